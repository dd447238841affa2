package entity

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestObjectNestsPathsSegmentBySegment pins the JSON Materialise decodes:
// each dotted path nested into its objects, a path's descendants kept
// together however its characters sort ("a-c" sorts between "a" and "a.b"
// byte by byte), and a leaf that is also a parent giving way to its
// children.
func TestObjectNestsPathsSegmentBySegment(t *testing.T) {
	leaves := []leaf{
		{"a", []byte(`1`)},
		{"a-c", []byte(`2`)},
		{"a.b", []byte(`3`)},
		{"a.d", []byte(`{"k":[4]}`)},
		{"x.y.z", []byte(`"5"`)},
		{"w\"q", []byte(`true`)},
	}
	var w jsonWriter
	w.open("id-1", "01", leaves)
	w.b = append(w.b, '}')
	var got map[string]any
	if err := json.Unmarshal(w.b, &got); err != nil {
		t.Fatalf("%s: %v", w.b, err)
	}
	var want map[string]any
	json.Unmarshal([]byte(`{"id":"id-1","villageCode":"01","a":{"b":3,"d":{"k":[4]}},"a-c":2,"x":{"y":{"z":"5"}},"w\"q":true}`), &want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("object = %s\nwant %v", w.b, want)
	}
}
