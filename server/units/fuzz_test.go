package units

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"testing"
)

// FuzzReadCSV: whatever the file, ReadCSV returns units or a *FieldError
// wrapping ErrInvalid, never panics; units it returns make a tree, and
// written back with WriteCSV they read the same.
func FuzzReadCSV(f *testing.F) {
	if b, err := os.ReadFile("testdata/lang-son-quan-son.csv"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("\uFEFFcode;name;level;kind;parent\r\n20;Lạng Sơn;province;tỉnh;\r\n06517;Quan Sơn;commune;xã;20\r\n"))
	f.Add([]byte("code,name,level,kind,parent\n20,A,province,,\n06517,B,commune,,20\n06517-1,C,village,,06517\n06517-2,D,village,,06517-1\n"))
	f.Add([]byte("code,name,level,kind,parent\n06517-1,C,village,,06517-2\n06517-2,D,village,,06517-1\n"))
	f.Add([]byte("parent,kind,level,name,code\n,,province,\"A, \"\"B\"\"\",01\n"))
	f.Fuzz(func(t *testing.T, file []byte) {
		units, err := ReadCSV(bytes.NewReader(file))
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %T %v is not a *FieldError", err, err)
			}
			return
		}
		tree, err := New(units)
		if err != nil {
			t.Fatalf("ReadCSV's units refused by New: %v", err)
		}
		if !same(tree.Units(), units) {
			t.Fatalf("New changed ReadCSV's units")
		}
		var buf bytes.Buffer
		if err := WriteCSV(&buf, units); err != nil {
			t.Fatal(err)
		}
		again, err := ReadCSV(&buf)
		if err != nil {
			t.Fatalf("WriteCSV's file refused: %v\n%s", err, buf.Bytes())
		}
		if !same(again, units) {
			t.Fatalf("round trip changed the units:\n got %+v\nwant %+v", again, units)
		}
	})
}

// same reports whether a and b hold the same units (nil and empty alike).
func same(a, b []Unit) bool {
	return len(a) == 0 && len(b) == 0 || reflect.DeepEqual(a, b)
}
