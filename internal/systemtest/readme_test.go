package systemtest

import (
	"bufio"
	"encoding/csv"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
)

// TestQuickstartAsInTheReadme runs the README's quickstart, line by line as
// written, against a real rasoatd and the built command line, in a fresh
// directory; the sync's output must be the line the README shows. Only the
// server's address differs: the test's server listens on a free port, so
// the two enrol lines get --server, and the output's address is the test's.
func TestQuickstartAsInTheReadme(t *testing.T) {
	runReadme(t, quickstart(t))
}

// TestReviewRoundAsInTheReadme runs the README's review round, which
// continues the quickstart: four people on their own tablet files take a
// household from draft to decided and print its certificate; then the
// exports that follow it. The outputs the README shows in its
// "readme-output" blocks are compared line by line (-update writes them).
func TestReviewRoundAsInTheReadme(t *testing.T) {
	round := readmeBlock(t, "review round", func(lines []string) bool {
		return len(lines) > 0 && strings.HasPrefix(lines[0], "rasoat admin --db admin.db person put lan")
	})
	exports := readmeBlock(t, "exports (```sh starting with rasoat report … --xlsx)", func(lines []string) bool {
		return len(lines) > 0 && strings.HasPrefix(lines[0], "rasoat report ") && strings.Contains(lines[0], "--xlsx")
	})
	// The report comes before the certificate: check it, and the same as
	// CSV (a line added after it), read back.
	lines := append(append(quickstart(t), round...), exports...)
	i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "rasoat report ") })
	if i < 0 || i == len(lines)-1 {
		t.Fatal("the README's review round has no rasoat report line before its last")
	}
	lines = slices.Insert(lines, i+1, lines[i]+" --csv")
	// The posting is stamped when the round runs: the README shows that
	// day as postedDay. The day is read before and after, in the commune's
	// time zone, should the run cross midnight.
	ict := time.FixedZone("ICT", 7*3600)
	days := []string{time.Now().In(ict).Format(time.DateOnly)}
	outs, dir := runReadmeOutputs(t, lines)
	days = append(days, time.Now().In(ict).Format(time.DateOnly))
	checkReadmeOutputs(t, lines, outs, func(s string) string {
		for _, d := range days {
			s = strings.ReplaceAll(s, d, postedDay)
		}
		return s
	})

	recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(outs[i+1], "\ufeff"))).ReadAll()
	if err != nil || len(recs) < 3 || recs[0][0] != "Đơn vị" || recs[1][2] != "tổng" || recs[1][4] != "1" {
		t.Errorf("the report as CSV = %q, %v; want a header, the total with the one household, and its groups", recs, err)
	}
	cert := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "rasoat review certificate ") })
	for _, want := range []string{"GIẤY CHỨNG NHẬN HỘ NGHÈO", "2026 POOR", "125/QĐ-UBND of 2025-12-10"} {
		if !strings.Contains(outs[cert], want) {
			t.Errorf("the README's certificate does not show %q:\n%s", want, outs[cert])
		}
	}

	// The workbooks the exports wrote: one household, decided poor, in
	// village 06517-01 (the round above), so every rate is 100 %.
	book := func(name string) *excelize.File {
		f, err := excelize.OpenFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("the README's workbook %s does not open: %v", name, err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	report := book("bao-cao-06517-2026.xlsx")
	if got := report.GetSheetList(); len(got) != 10 || got[0] != "Tổng hợp" || got[1] != "Theo thôn" {
		t.Errorf("report workbook sheets %q", got)
	}
	if rows, err := report.GetRows("Tổng hợp"); err != nil || len(rows) != 2 || strings.Join(rows[1][:11], "|") != "06517|2026|1|1|1|0|0|0|0|100.00%|100.00%" {
		t.Errorf("report workbook's overall sheet %q, %v", rows, err)
	}
	if rows, err := report.GetRows("Theo thôn"); err != nil || len(rows) != 2 || rows[1][0] != "06517-01" || rows[1][3] != "1" {
		t.Errorf("report workbook's villages %q, %v", rows, err)
	}
	decision := book("quyet-dinh-125.xlsx")
	if rows, err := decision.GetRows("Danh sách hộ nghèo"); err != nil || len(rows) != 2 || rows[1][1] != "0193a1f2-7c4e-7b1a-9d2e-5f6a7b8c9d01" || rows[1][4] != "hộ nghèo" {
		t.Errorf("decision workbook's poor list %q, %v", rows, err)
	}
}

// postedDay is the posting day the README's posted list shows.
const postedDay = "2025-11-03"

var update = flag.Bool("update", false, "write this run's outputs into the README's readme-output blocks")

// checkReadmeOutputs compares each README block marked
//
//	<!-- readme-output: COMMAND -->
//
// with the output of the line COMMAND among lines, every line, after vary
// (which puts the README's values in place of those that change from run
// to run) and without trailing spaces (which the README does not keep).
// With -update it writes the outputs into the README instead.
func checkReadmeOutputs(t *testing.T, lines, outs []string, vary func(string) string) {
	t.Helper()
	path := filepath.Join("..", "..", "README.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := strings.Split(string(b), "\n")
	const marker = "<!-- readme-output: "
	changed, found := false, 0
	for k := 0; k < len(readme); k++ {
		cmd, ok := strings.CutPrefix(readme[k], marker)
		if !ok {
			continue
		}
		cmd = strings.TrimSuffix(cmd, " -->")
		found++
		i := slices.Index(lines, cmd)
		if i < 0 {
			t.Errorf("README.md:%d: readme-output %q is not a line the test runs", k+1, cmd)
			continue
		}
		if k+1 >= len(readme) || readme[k+1] != "```text" {
			t.Fatalf("README.md:%d: readme-output is not followed by a ```text block", k+1)
		}
		end := slices.Index(readme[k+2:], "```")
		if end < 0 {
			t.Fatalf("README.md:%d: the block never closes", k+2)
		}
		end += k + 2
		var got []string
		for _, l := range strings.Split(strings.TrimRight(vary(outs[i]), "\n"), "\n") {
			got = append(got, strings.TrimRight(l, " "))
		}
		want := readme[k+2 : end]
		if slices.Equal(got, want) {
			continue
		}
		if *update {
			readme = slices.Concat(readme[:k+2], got, readme[end:])
			changed = true
			continue
		}
		for n := range max(len(got), len(want)) {
			g, w := "(none)", "(none)"
			if n < len(got) {
				g = got[n]
			}
			if n < len(want) {
				w = want[n]
			}
			if g != w {
				t.Errorf("README.md:%d, the output of %q differs from its line %d:\n got %q\nwant %q\n(go test ./internal/systemtest -run %s -update writes this run's output)", k+3+n, cmd, n+1, g, w, t.Name())
				break
			}
		}
	}
	if found == 0 {
		t.Error("README.md has no readme-output block")
	}
	if changed {
		if err := os.WriteFile(path, []byte(strings.Join(readme, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("README.md: readme-output blocks written from this run")
	}
}

// runReadme runs README lines in a fresh directory against a real rasoatd
// and the built command line, checking each "# " line against the output
// of the command before it ($name expanded), and returns the last output.
func runReadme(t *testing.T, lines []string) string {
	t.Helper()
	outs, _ := runReadmeOutputs(t, lines)
	return outs[len(outs)-1]
}

// runReadmeOutputs is runReadme returning each line's output (a line
// that prints nothing, or checks an output, has ""), in the lines' order,
// and the directory the lines ran in.
func runReadmeOutputs(t *testing.T, lines []string) ([]string, string) {
	t.Helper()
	outs := make([]string, len(lines))
	dir := t.TempDir()
	for _, link := range []string{"examples", "survey"} {
		abs, err := filepath.Abs(filepath.Join("..", "..", link))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(abs, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	srv := startServer(t, filepath.Join(dir, "rasoat.db"))
	vars := map[string]string{}
	var last string // the last command's output
	for i, line := range lines {
		switch {
		case line == "make run &" || strings.HasPrefix(line, "rasoat() {"):
			continue // the server is started above; rasoat is the built binary
		case strings.HasPrefix(line, "# "):
			want := strings.ReplaceAll(strings.TrimPrefix(line, "# "), "127.0.0.1:7443", srv.addr)
			for name, v := range vars {
				want = strings.ReplaceAll(want, "$"+name, v)
			}
			if got := strings.TrimSpace(last); got != want {
				t.Errorf("README line %q: the command before it printed\n%s\nwant\n%s", lines[i-1], got, want)
			}
			continue
		}
		name, value, assign := strings.Cut(line, "=$(")
		if assign && !strings.ContainsAny(name, " \"") {
			vars[name] = strings.TrimSpace(runReadmeLine(t, dir, srv.addr, strings.TrimSuffix(value, ")"), vars))
			continue
		}
		last = runReadmeLine(t, dir, srv.addr, line, vars)
		outs[i] = last
	}
	return outs, dir
}

// quickstart returns the shell lines of the README's quickstart block.
func quickstart(t *testing.T) []string {
	t.Helper()
	return readmeBlock(t, "quickstart (```sh starting with make run &, with rasoatd bootstrap)", func(lines []string) bool {
		return len(lines) > 0 && lines[0] == "make run &" && strings.Contains(strings.Join(lines, "\n"), "bootstrap")
	})
}

// readmeBlock returns the shell lines, without their trailing comments, of
// the README's first ```sh block that is, by is.
func readmeBlock(t *testing.T, what string, is func(lines []string) bool) []string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case !in && line == "```sh":
			lines, in = nil, true
		case in && line == "```":
			if is(lines) {
				return lines
			}
			in = false
		case in:
			if !strings.HasPrefix(line, "# ") {
				if k := strings.Index(line, "   #"); k >= 0 {
					line = line[:k]
				}
			}
			if line = strings.TrimSpace(line); line != "" {
				lines = append(lines, line)
			}
		}
	}
	t.Fatalf("README.md has no %s block", what)
	return nil
}

// runReadmeLine runs one command line of the quickstart in dir: words split
// as a shell would for these lines (double quotes, "$var", "$(command)").
func runReadmeLine(t *testing.T, dir, addr, line string, vars map[string]string) string {
	t.Helper()
	words := shellWords(t, line, func(inner string) string { return runReadmeLine(t, dir, addr, inner, vars) }, vars)
	var cmd *exec.Cmd
	switch {
	case len(words) >= 3 && words[0] == "go" && words[1] == "run" && words[2] == "./server/cmd/rasoatd":
		cmd = exec.Command(rasoatd, words[3:]...)
	case words[0] == "rasoat":
		args := words[1:]
		if args[0] == "enrol" {
			args = append(args, "--server", addr)
		}
		cmd = exec.Command(rasoatBin, args...)
	default:
		t.Fatalf("README line %q: not a command this test knows", line)
	}
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("README line %q: %v\n%s", line, err, msg)
	}
	return string(out)
}

// shellWords splits line into words: spaces separate, double quotes group,
// "$name" is vars[name], "$(…)" is sub's output without its last newline.
func shellWords(t *testing.T, line string, sub func(string) string, vars map[string]string) []string {
	t.Helper()
	var words []string
	var w strings.Builder
	quoted, started := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '"':
			quoted, started = !quoted, true
		case c == ' ' && !quoted:
			if started {
				words = append(words, w.String())
				w.Reset()
				started = false
			}
		case c == '$' && i+1 < len(line) && line[i+1] == '(':
			depth, j := 1, i+2
			for ; j < len(line) && depth > 0; j++ {
				switch line[j] {
				case '(':
					depth++
				case ')':
					depth--
				}
			}
			w.WriteString(strings.TrimSuffix(sub(line[i+2:j-1]), "\n"))
			i, started = j-1, true
		case c == '$':
			j := i + 1
			for j < len(line) && (line[j] == '_' || 'a' <= line[j] && line[j] <= 'z' || 'A' <= line[j] && line[j] <= 'Z') {
				j++
			}
			v, ok := vars[line[i+1:j]]
			if !ok {
				t.Fatalf("README line %q: $%s is not set", line, line[i+1:j])
			}
			w.WriteString(v)
			i, started = j-1, true
		default:
			w.WriteByte(c)
			started = true
		}
	}
	if started {
		words = append(words, w.String())
	}
	return words
}
