package main

// What the verbs working on the tablet's local SQLite file share (add, set,
// member, show, list, conflicts, review, sync): the --db flag, flags
// anywhere among the arguments, opening the file, reading one JSON
// document, and turning errors into messages and exit codes.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/rasoat/rasoat/client"
	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/survey"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// defaultDB is the tablet file when --db is not given: in the working
// directory, beside rasoatd's rasoat.db but never the same file (a test
// server and a tablet often run in one directory).
const defaultDB = "tablet.db"

// verb is one invocation of a verb: where it writes and how it reports.
type verb struct {
	name   string // as typed after "rasoat": "add", "member add"
	usage  string
	stdout io.Writer
	stderr io.Writer
}

// flags returns the verb's flag set with --db.
func (v *verb) flags() (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(v.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	db := fs.String("db", defaultDB, "")
	return fs, db
}

// parse reads flags anywhere among args and returns the other arguments,
// of which there must be min to max; names says what they are, for the
// message when some are missing. On -h it prints the usage and returns
// exitOK with ok false; on bad usage, exitUsage.
func (v *verb) parse(fs *flag.FlagSet, args []string, min, max int, names string) (pos []string, code int, ok bool) {
	pos, err := parseArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(v.stdout, v.usage)
		return nil, exitOK, false
	}
	switch {
	case err != nil:
	case len(pos) < min:
		err = fmt.Errorf("missing %s", names)
	case len(pos) > max:
		err = fmt.Errorf("unexpected argument %q", pos[max])
	}
	if err != nil {
		return nil, v.usageError(err), false
	}
	return pos, exitOK, true
}

// usageError prints err and the usage, and returns exitUsage.
func (v *verb) usageError(err error) int {
	fmt.Fprintf(v.stderr, "rasoat %s: %v\n\n%s", v.name, err, v.usage)
	return exitUsage
}

// fail prints err and returns its exit code: exitInvalid for input the
// verb refused (a field named as wrong, an unknown id, a workflow step not
// allowed), exitUsage for everything else (the file cannot be opened or
// read, the network).
func (v *verb) fail(err error) int {
	var ve *survey.ValidationError
	if errors.As(err, &ve) {
		prefix := strings.TrimSuffix(err.Error(), ve.Error()) // "assess household …: "
		fmt.Fprintf(v.stderr, "rasoat %s: %sinvalid household:\n", v.name, prefix)
		writeViolations(v.stderr, ve)
		return exitInvalid
	}
	fmt.Fprintf(v.stderr, "rasoat %s: %v\n", v.name, err)
	if errors.Is(err, client.ErrNotFound) {
		fmt.Fprintf(v.stderr, "rasoat %s: %s\n", v.name, notFoundHint)
	}
	if invalidInput(err) {
		return exitInvalid
	}
	return exitUsage
}

// notFoundHint says what to do about an id this file does not hold.
const notFoundHint = "rasoat list shows this file's households and their ids, rasoat show HOUSEHOLD_ID a household's members; " +
	"a household enrolled on another tablet arrives here with rasoat sync"

// invalidInput reports whether err is about the input rather than the
// file or the network.
func invalidInput(err error) bool {
	var fe *entity.FieldError
	var ie *inputError
	var ve *survey.ValidationError
	return errors.As(err, &fe) || errors.As(err, &ie) || errors.As(err, &ve) ||
		errors.Is(err, client.ErrNotFound) || errors.Is(err, client.ErrExists) || errors.Is(err, client.ErrAmbiguous) ||
		errors.Is(err, client.ErrWorkflow) || errors.Is(err, survey.ErrNoStandard)
}

// writeViolations lists what the standard found wrong or missing, one
// field a line.
func writeViolations(w io.Writer, ve *survey.ValidationError) {
	for _, x := range ve.Violations {
		fmt.Fprintf(w, "  %s: %s\n", x.Field, x.Description)
	}
}

// inputError is input this command refused before the library saw it,
// naming the field when it can.
type inputError struct {
	field string
	desc  string
}

func (e *inputError) Error() string {
	if e.field == "" {
		return e.desc
	}
	return e.field + ": " + e.desc
}

// parseArgs parses the flags of fs wherever they are among args and
// returns the other arguments in order. Everything after "--" is an
// argument, and so is a negative number ("-1.5", a JSON value for set).
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for len(args) > 0 {
		if !isFlag(args[0]) {
			pos, args = append(pos, args[0]), args[1:]
			continue
		}
		// The flags from here to the next argument, each with its value.
		end := 0
		for end < len(args) && isFlag(args[end]) {
			a := args[end]
			end++
			if a == "--" {
				break
			}
			name := strings.TrimLeft(a, "-")
			if strings.Contains(name, "=") {
				continue
			}
			if f := fs.Lookup(name); f != nil && !isBoolFlag(f) && end < len(args) {
				end++ // its value, whatever it looks like
			}
		}
		if err := fs.Parse(args[:end]); err != nil {
			return nil, err
		}
		if args[end-1] == "--" {
			return append(pos, args[end:]...), nil
		}
		args = args[end:]
	}
	return pos, nil
}

// isFlag reports whether a looks like a flag: "-x", "--x", or "--" itself;
// not "-" (standard input) nor a negative number.
func isFlag(a string) bool {
	if len(a) < 2 || a[0] != '-' {
		return false
	}
	_, err := strconv.ParseFloat(a, 64)
	return err != nil
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// openDB opens the tablet file at path. Unless create is set, the file must
// exist: a verb that reads or changes households does not make an empty
// file where the user mistyped --db.
func openDB(ctx context.Context, path string, create bool, opts ...client.Option) (*client.Client, error) {
	if path == "" {
		return nil, errors.New("--db is empty")
	}
	if !create {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: no such file: enrol a household with rasoat add, fetch your villages with rasoat sync, or name the file with --db", path)
		} else if err != nil {
			return nil, err
		}
	}
	return client.Open(ctx, path, opts...)
}

// maxDocBytes bounds one JSON document read by add and member add.
const maxDocBytes = maxLineBytes

// readInput reads the whole of name, or of stdin when name is "" or "-",
// up to maxDocBytes.
func readInput(stdin io.Reader, name string) ([]byte, error) {
	return readInputMax(stdin, name, maxDocBytes)
}

// readInputMax is readInput up to limit bytes.
func readInputMax(stdin io.Reader, name string, limit int) ([]byte, error) {
	in := stdin
	if name != "" && name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		in = f
	} else {
		name = "standard input"
	}
	b, err := io.ReadAll(io.LimitReader(in, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(b) > limit {
		return nil, fmt.Errorf("read %s: longer than %d bytes (%d MiB), the limit", name, limit, limit>>20)
	}
	return b, nil
}

// decodeJSON decodes one JSON document (pretty-printed or not) into m with
// protojson. A refused document gives an *inputError naming the field
// ("members[1].sex") and saying what is wrong, in the words of locate, or
// the line and column of a syntax error.
func decodeJSON(b []byte, m proto.Message) error {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	if len(bytes.TrimSpace(b)) == 0 {
		return &inputError{desc: "no JSON given"}
	}
	var raw json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := lineCol(b, int(se.Offset)-1)
			return &inputError{desc: fmt.Sprintf("not one JSON document: line %d, column %d: %v", line, col, err)}
		}
		return &inputError{desc: err.Error()}
	}
	err := protojson.Unmarshal(b, m)
	if err == nil {
		return nil
	}
	if p := locate(b, m.ProtoReflect().Descriptor()); p != nil {
		return &inputError{field: p.path, desc: p.desc}
	}
	// Something locate does not model: protojson's words, as they are.
	return &inputError{desc: err.Error()}
}

// lineCol is the line and column (in characters), from 1, of the byte at
// offset off of b.
func lineCol(b []byte, off int) (line, col int) {
	off = max(0, min(off, len(b)))
	start := bytes.LastIndexByte(b[:off], '\n') + 1
	return 1 + bytes.Count(b[:start], []byte("\n")), 1 + utf8.RuneCount(b[start:off])
}

// subcommand finds the subcommand of member or review among args (flags
// may come before it: "rasoat member --db F add …") and returns it and the
// other arguments. valueFlags are the flags that take a value. sub is ""
// when there is none; help is set when -h came before it.
// sub is one subcommand of a verb: its name and what runs it, with the
// arguments left once the name is taken out.
type sub struct {
	name string
	run  func(ctx context.Context, v *verb, args []string) int
}

// runSub runs the subcommand args name among subs (valueFlags as
// subcommand takes them), naming v after it; with none, it prints v's usage
// for --help and refuses the rest, naming the subcommands there are.
func runSub(ctx context.Context, v *verb, args []string, valueFlags []string, subs ...sub) int {
	name, rest, help := subcommand(args, valueFlags...)
	names := make([]string, len(subs))
	for i, s := range subs {
		names[i] = s.name
	}
	want := strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
	if name == "" {
		if help {
			fmt.Fprint(v.stdout, v.usage)
			return exitOK
		}
		return v.usageError(errors.New("missing subcommand: " + want))
	}
	for _, s := range subs {
		if s.name == name {
			v.name += " " + name
			return s.run(ctx, v, rest)
		}
	}
	return v.usageError(fmt.Errorf("unknown subcommand %q: want %s", name, want))
}

func subcommand(args []string, valueFlags ...string) (sub string, rest []string, help bool) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if !isFlag(a) {
			return a, append(slices.Clone(args[:i]), args[i+1:]...), false
		}
		name := strings.TrimLeft(a, "-")
		switch {
		case name == "h" || name == "help":
			help = true
		case !strings.Contains(name, "=") && slices.Contains(valueFlags, name):
			i++ // its value
		}
	}
	return "", args, help
}
