package units_test

import (
	"fmt"
	"log"
	"os"

	"github.com/rasoat/rasoat/server/units"
)

// A commune server loads the operator's file and finds the villages it
// serves.
func Example() {
	f, err := os.Open("testdata/lang-son-quan-son.csv")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	list, err := units.ReadCSV(f)
	if err != nil {
		log.Fatal(err) // e.g. line 12: parent "0623": no such unit
	}
	tree, err := units.New(list)
	if err != nil {
		log.Fatal(err)
	}
	commune, _ := tree.Unit("06517")
	fmt.Println(commune.FullName())
	for _, v := range tree.VillagesOf(commune.Code) {
		fmt.Println(" ", v.Code, v.FullName())
	}
	// Output:
	// Xã Quan Sơn
	//   06517-01 Thôn Làng Hăng
	//   06517-02 Thôn Làng Thượng
	//   06517-03 Thôn Làng Hạ
}
