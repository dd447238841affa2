package systemtest

import (
	"bufio"
	"encoding/csv"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
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
// household from draft to decided and print its certificate.
func TestReviewRoundAsInTheReadme(t *testing.T) {
	round := readmeBlock(t, "review round", func(lines []string) bool {
		return len(lines) > 0 && strings.HasPrefix(lines[0], "rasoat admin --db admin.db person put lan")
	})
	// The report comes before the certificate: check it, and the same as
	// CSV (a line added after it), read back.
	lines := append(quickstart(t), round...)
	i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "rasoat report ") })
	if i < 0 || i == len(lines)-1 {
		t.Fatal("the README's review round has no rasoat report line before its last")
	}
	lines = slices.Insert(lines, i+1, lines[i]+" --csv")
	outs := runReadmeOutputs(t, lines)
	if report := outs[i]; !strings.Contains(report, "thôn 06517-01") || !strings.Contains(report, "Báo cáo kết quả rà soát — đơn vị 06517, danh sách năm 2026") {
		t.Errorf("the README's report does not show the commune's village:\n%s", report)
	}
	recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(outs[i+1], "\ufeff"))).ReadAll()
	if err != nil || len(recs) < 3 || recs[0][0] != "Đơn vị" || recs[1][2] != "tổng" || recs[1][4] != "1" {
		t.Errorf("the report as CSV = %q, %v; want a header, the total with the one household, and its groups", recs, err)
	}
	last := outs[len(outs)-1]
	for _, want := range []string{"GIẤY CHỨNG NHẬN HỘ NGHÈO", "2026 POOR", "125/QĐ-UBND of 2025-12-10"} {
		if !strings.Contains(last, want) {
			t.Errorf("the README's certificate does not show %q:\n%s", want, last)
		}
	}
}

// runReadme runs README lines in a fresh directory against a real rasoatd
// and the built command line, checking each "# " line against the output
// of the command before it ($name expanded), and returns the last output.
func runReadme(t *testing.T, lines []string) string {
	t.Helper()
	outs := runReadmeOutputs(t, lines)
	return outs[len(outs)-1]
}

// runReadmeOutputs is runReadme returning each line's output (a line
// that prints nothing, or checks an output, has ""), in the lines' order.
func runReadmeOutputs(t *testing.T, lines []string) []string {
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
	return outs
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
