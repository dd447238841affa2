package units

import (
	"fmt"
	"strings"
	"testing"
)

// nationalFile is a units file the size of the country: 34 provinces,
// 3,321 communes (98 or 97 a province) and 30 villages a commune (99,630).
func nationalFile() string {
	var b strings.Builder
	b.WriteString("code,name,level,kind,parent\n")
	commune := 0
	for p := 1; p <= 34; p++ {
		fmt.Fprintf(&b, "%02d,Tỉnh số %d,province,tỉnh,\n", p, p)
		for ; commune < 3321*p/34; commune++ {
			fmt.Fprintf(&b, "%05d,Xã số %d,commune,xã,%02d\n", commune+1, commune+1, p)
			for v := 1; v <= 30; v++ {
				fmt.Fprintf(&b, "%05d-%02d,Thôn Nà Pàn %d,village,thôn,%05d\n", commune+1, v, v, commune+1)
			}
		}
	}
	return b.String()
}

// BenchmarkReadCSVNational reads a national units file and builds its
// tree, as a province or national server does at start.
func BenchmarkReadCSVNational(b *testing.B) {
	file := nationalFile()
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	for b.Loop() {
		units, err := ReadCSV(strings.NewReader(file))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := New(units); err != nil {
			b.Fatal(err)
		}
	}
}
