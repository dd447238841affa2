package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// add enrols a copy of householdExample, with fresh ids, in village of
// the file db and returns its id.
func add(t *testing.T, db, village string) string {
	t.Helper()
	b, err := os.ReadFile(householdExample)
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	delete(h, "id")
	h["villageCode"] = village
	for _, m := range h["members"].([]any) {
		delete(m.(map[string]any), "id")
	}
	if b, err = json.Marshal(h); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(ok(t, string(b), "add", "--db", db, "-"))
}

// jsonLines decodes each line of out into a T.
func jsonLines[T any](t *testing.T, out string) []T {
	t.Helper()
	var list []T
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var x T
		if err := json.Unmarshal(sc.Bytes(), &x); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		list = append(list, x)
	}
	return list
}

// TestACommuneFromBootstrapToRevocation walks what a commune does with
// the command line, in order: the admin enrols with the bootstrap code,
// imports the units and people and issues codes; collaborators enrol,
// enter and sync their villages; an officer reads the history; a lost
// tablet is revoked and enrolled again.
func TestACommuneFromBootstrapToRevocation(t *testing.T) {
	s := startAuthServer(t, nil)
	c := setUpCommune(t, s)
	var hoa, lan, hoaHousehold, lanHousehold, hoaDevice string

	steps := []struct {
		name string
		do   func(t *testing.T)
	}{
		{"the admin's file is enrolled as the admin", func(t *testing.T) {
			id := c.whoami(t, c.admin)
			if id.Person.ID != "admin" || !slices.Equal(id.Person.Roles, []string{"admin"}) || id.Device.Name != "máy tính xã" {
				t.Errorf("whoami: %+v", id)
			}
		}},
		{"the units imported are listed, the served commune marked", func(t *testing.T) {
			units := jsonLines[unitJSON](t, c.ok(t, "admin", "units", "list", "--json", "--db", c.admin))
			var codes []string
			for _, u := range units {
				codes = append(codes, u.Code)
				if u.Served != (u.Code == "06517") {
					t.Errorf("%s served %v", u.Code, u.Served)
				}
			}
			if want := []string{"20", "06517", "06517-01", "06517-02"}; !slices.Equal(codes, want) {
				t.Errorf("units %v, want %v", codes, want)
			}
			if out := c.ok(t, "admin", "units", "import", "testdata/units-quan-son.csv", "--db", c.admin); out != "units: 0 created, 4 updated; this server serves 06517\n" {
				t.Errorf("a second import printed %q", out)
			}
		}},
		{"people imported from a CSV file with a byte order mark are listed with their roles", func(t *testing.T) {
			if out := c.ok(t, "admin", "people", "import", "testdata/people-quan-son.csv", "--db", c.admin); out != "people: 2 created, 0 updated\n" {
				t.Errorf("import printed %q", out)
			}
			people := jsonLines[personJSON](t, c.ok(t, "admin", "people", "list", "--json", "--db", c.admin))
			i := slices.IndexFunc(people, func(p personJSON) bool { return p.ID == "binh" })
			if i < 0 || !slices.Equal(people[i].Roles, []string{"village_head", "commune_officer"}) || !slices.Equal(people[i].Units, []string{"06517", "06517-01"}) || people[i].Name != "Lê Văn Bình" {
				t.Errorf("people list: %+v", people)
			}
		}},
		{"a collaborator enrols with the code the admin issued and sees their village only", func(t *testing.T) {
			hoa = c.tablet(t, "hoa", "collaborator", "06517-01")
			id := c.whoami(t, hoa)
			if id.Person.ID != "hoa" || !slices.Equal(id.Villages, []string{"06517-01"}) {
				t.Errorf("whoami: %+v", id)
			}
			hoaDevice = id.Device.ID
		}},
		{"enrol prints who the server takes the device for", func(t *testing.T) {
			code := strings.TrimSpace(c.ok(t, "admin", "code", "lan", "--ttl", "1h", "--db", c.admin))
			lan = c.newFile()
			out := c.ok(t, "enrol", "--db", lan, "--code", strings.ToLower(code), "--name", "tablet Làng Thượng")
			for _, want := range []string{"enrolled with " + s.addr, "person    lan (Hoàng Thị Lan)", "roles     collaborator", "villages  06517-02", "(tablet Làng Thượng)"} {
				if !strings.Contains(out, want) {
					t.Errorf("enrol printed no %q:\n%s", want, out)
				}
			}
		}},
		{"a collaborator of village 01 does not receive village 02's households", func(t *testing.T) {
			hoaHousehold = add(t, hoa, "06517-01")
			lanHousehold = add(t, lan, "06517-02")
			c.ok(t, "sync", "--db", hoa)
			c.ok(t, "sync", "--db", lan)
			c.ok(t, "sync", "--db", hoa)
			got := ok(t, "", "list", "--db", hoa)
			if !strings.Contains(got, hoaHousehold) || strings.Contains(got, lanHousehold) {
				t.Errorf("hoa's tablet lists:\n%s", got)
			}
			if got := ok(t, "", "list", "--db", lan); strings.Contains(got, hoaHousehold) {
				t.Errorf("lan's tablet lists hoa's household:\n%s", got)
			}
		}},
		{"a change written to another's village is set aside, not lost", func(t *testing.T) {
			add(t, hoa, "06517-02")
			out := c.ok(t, "sync", "--db", hoa)
			if !strings.Contains(out, "refused by the server and set aside") {
				t.Errorf("sync printed %q", out)
			}
		}},
		{"history shows who wrote a change and from which device", func(t *testing.T) {
			ok(t, "", "set", "--db", hoa, hoaHousehold, "headName", `"Hoàng Văn Sang"`)
			c.ok(t, "sync", "--db", hoa)
			officer := c.tablet(t, "binh", "commune_officer", "06517")
			entries := jsonLines[historyJSON](t, c.ok(t, "history", hoaHousehold, "--json", "--db", officer))
			if len(entries) < 2 {
				t.Fatalf("%d history entries", len(entries))
			}
			last := entries[len(entries)-1]
			if last.Field != "headName" || string(last.Value) != `"Hoàng Văn Sang"` || last.Author != "hoa" || last.Sender != "hoa" || last.SenderDevice != hoaDevice || last.ReceivedAt == "" {
				t.Errorf("last entry: %+v", last)
			}
			text := c.ok(t, "history", hoaHousehold, "--db", officer)
			if !strings.Contains(text, "AUTHOR") || !strings.Contains(squash(text), "hoa hoa "+hoaDevice+" headName \"Hoàng Văn Sang\"") {
				t.Errorf("history:\n%s", text)
			}
		}},
		{"history of another village's household is refused", func(t *testing.T) {
			_, stderr, code := c.run(t, "history", lanHousehold, "--db", hoa)
			if code != exitInvalid || !strings.Contains(stderr, "not in your villages") {
				t.Errorf("exit code %d, stderr %q", code, stderr)
			}
		}},
		{"the admin lists a person's devices", func(t *testing.T) {
			devs := jsonLines[deviceJSON](t, c.ok(t, "admin", "devices", "--person", "hoa", "--json", "--db", c.admin))
			if len(devs) != 1 || devs[0].ID != hoaDevice || devs[0].Name != "tablet hoa" || devs[0].Revoked {
				t.Errorf("devices: %+v", devs)
			}
		}},
		{"a revoked device's next sync fails and says what to do", func(t *testing.T) {
			if out := c.ok(t, "admin", "revoke", hoaDevice, "--db", c.admin); !strings.Contains(out, "revoked") {
				t.Errorf("revoke printed %q", out)
			}
			ok(t, "", "set", "--db", hoa, hoaHousehold, "housing.floorAreaM2", "40")
			stdout, stderr, code := c.run(t, "sync", "--db", hoa)
			if code != exitUsage || stdout != "" || !strings.Contains(stderr, "this device's token was revoked") || !strings.Contains(stderr, "rasoat enrol --server "+s.addr) {
				t.Errorf("exit code %d, stdout %q, stderr %q", code, stdout, stderr)
			}
			if n := pending(t, hoa); n != 1 {
				t.Errorf("%d changes pending, want the one written", n)
			}
		}},
		{"enrolled again with a new code, the tablet sends what it wrote meanwhile", func(t *testing.T) {
			code := strings.TrimSpace(c.ok(t, "admin", "code", "hoa", "--db", c.admin))
			c.ok(t, "enrol", "--db", hoa, "--code", code)
			if got := parseSummary(t, s.addr, c.ok(t, "sync", "--db", hoa)); got.pushed != 1 {
				t.Errorf("sync after enrolling again: %+v", got)
			}
		}},
	}
	for _, st := range steps {
		if !t.Run(st.name, st.do) {
			return
		}
	}
}

func TestCallsRefusedForTheDeviceSayWhatToDo(t *testing.T) {
	s := startAuthServer(t, nil)
	c := setUpCommune(t, s)
	hoa := c.tablet(t, "hoa", "collaborator", "06517-01")
	lan := c.tablet(t, "lan", "collaborator", "06517-02")
	c.ok(t, "admin", "person", "put", "lan", "--disabled", "--db", c.admin)
	notEnrolled := tabletFile(t)
	add(t, notEnrolled, "06517-01")
	tests := []struct {
		name      string
		args      []string
		code      int
		stderrHas string
	}{
		{"a sync from a file not enrolled", []string{"sync", "--db", notEnrolled}, exitUsage, "this device is not enrolled: rasoat enrol --server " + s.addr + " --db " + notEnrolled + " --code CODE"},
		{"an admin call from a file not enrolled", []string{"admin", "units", "list", "--db", notEnrolled}, exitUsage, "this device is not enrolled: rasoat enrol"},
		{"an admin call from a file that does not exist", []string{"admin", "people", "list", "--db", filepath.Join(t.TempDir(), "admin.db")}, exitUsage, "no such file: this device is not enrolled"},
		{"a sync from the tablet of a person disabled", []string{"sync", "--db", lan}, exitUsage, "this device's token was revoked (by an admin, or its person was disabled)"},
		{"whoami from the tablet of a person disabled", []string{"whoami", "--db", lan}, exitUsage, "this device's token was revoked"},
		{"an admin call from a collaborator's tablet", []string{"admin", "people", "list", "--db", hoa}, exitUsage, "has no role that may do this"},
		{"history from the admin's computer", []string{"history", exampleID, "--db", c.admin}, exitUsage, "has no role that may do this"},
		{"a code for nobody", []string{"admin", "code", "nobody", "--db", c.admin}, exitInvalid, `no person "nobody"`},
		{"revoking a device that does not exist", []string{"admin", "revoke", "no-such-device", "--db", c.admin}, exitInvalid, "no-such-device"},
		{"history of an id the server does not hold", []string{"history", exampleID, "--db", hoa}, exitInvalid, "no such entity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := c.run(t, tt.args...)
			if code != tt.code || stdout != "" || !strings.Contains(stderr, tt.stderrHas) {
				t.Errorf("exit code %d, stdout %q, stderr %q; want %d and %q", code, stdout, stderr, tt.code, tt.stderrHas)
			}
		})
	}
}

func TestAdminInputTheServerRefusesIsNamedInTheInputsWords(t *testing.T) {
	s := startAuthServer(t, nil)
	c := setUpCommune(t, s)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	unknownUnit := write("people.csv", "id,name,roles,units\nhoa,Nguyễn Thị Hoa,collaborator,06517-01\n\nlan,Hoàng Thị Lan,collaborator,06517-09\n")
	tests := []struct {
		name      string
		args      []string
		stderrHas []string
	}{
		{"a person's unit the server does not know names the file's line", []string{"admin", "people", "import", unknownUnit}, []string{unknownUnit + ": line 4: units: \"06517-09\" is not a unit of this server"}},
		{"a person put with an unknown unit names --units", []string{"admin", "person", "put", "hoa", "--name", "Hoa", "--roles", "collaborator", "--units", "06517-09"}, []string{"--units: \"06517-09\""}},
		{"a person id the server refuses names ID", []string{"admin", "person", "put", "Hoa Nguyen", "--name", "Hoa", "--roles", "collaborator", "--units", "06517-01"}, []string{"  ID: "}},
		{"a served unit that is a village names --serve", []string{"admin", "units", "import", "testdata/units-quan-son.csv", "--serve", "06517-01"}, []string{"--serve: is a village"}},
		{"a code valid too long names --ttl", []string{"admin", "code", "admin", "--ttl", "1000h"}, []string{"--ttl: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := c.run(t, append(tt.args, "--db", c.admin)...)
			if code != exitInvalid || stdout != "" {
				t.Errorf("exit code %d, stdout %q; want %d and nothing", code, stdout, exitInvalid)
			}
			for _, want := range tt.stderrHas {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr does not contain %q:\n%s", want, stderr)
				}
			}
		})
	}
	people := jsonLines[personJSON](t, c.ok(t, "admin", "people", "list", "--json", "--db", c.admin))
	if len(people) != 1 {
		t.Errorf("a refused import stored something: %+v", people)
	}
}

func TestPersonPutKeepsWhatAFlagLeavesOut(t *testing.T) {
	s := startAuthServer(t, nil)
	c := setUpCommune(t, s)
	c.ok(t, "admin", "person", "put", "hoa", "--name", "Nguyễn Thị Hoa", "--roles", "collaborator,VILLAGE-HEAD", "--units", "06517-01", "--db", c.admin)
	steps := []struct {
		name  string
		flags []string
		want  personJSON
	}{
		{"a new name keeps roles and units", []string{"--name", "Nguyễn Thị Hòa"}, personJSON{ID: "hoa", Name: "Nguyễn Thị Hòa", Roles: []string{"collaborator", "village_head"}, Units: []string{"06517-01"}}},
		{"--disabled keeps everything else", []string{"--disabled"}, personJSON{ID: "hoa", Name: "Nguyễn Thị Hòa", Roles: []string{"collaborator", "village_head"}, Units: []string{"06517-01"}, Disabled: true}},
		{"new units and --disabled=false", []string{"--units", "06517-01,06517-02", "--disabled=false"}, personJSON{ID: "hoa", Name: "Nguyễn Thị Hòa", Roles: []string{"collaborator", "village_head"}, Units: []string{"06517-01", "06517-02"}}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			out := c.ok(t, append([]string{"admin", "person", "put", "hoa", "--db", c.admin}, st.flags...)...)
			if !strings.HasPrefix(out, "person hoa updated") {
				t.Errorf("put printed %q", out)
			}
			people := jsonLines[personJSON](t, c.ok(t, "admin", "people", "list", "--json", "--db", c.admin))
			i := slices.IndexFunc(people, func(p personJSON) bool { return p.ID == "hoa" })
			if i < 0 {
				t.Fatal("hoa is gone")
			}
			got, _ := json.Marshal(people[i])
			want, _ := json.Marshal(st.want)
			if string(got) != string(want) {
				t.Errorf("hoa is %s, want %s", got, want)
			}
		})
	}
}

func TestAdminBadUsageExitsTwo(t *testing.T) {
	db := tabletFile(t)
	tests := []struct {
		name      string
		args      []string
		stderrHas string
	}{
		{"admin needs a subcommand", []string{"admin"}, "missing units, person, people"},
		{"units needs import or list", []string{"admin", "units"}, "missing import or list"},
		{"person has put only", []string{"admin", "person", "delete", "hoa"}, `unknown subcommand "delete" of person`},
		{"a units file is .csv or .json", []string{"admin", "units", "import", "units.txt"}, "ends in .csv or .json"},
		{"a role must be one of the roles", []string{"admin", "person", "put", "hoa", "--roles", "chief"}, `"chief" is not a role: want collaborator, village_head`},
		{"a code's ttl is positive", []string{"admin", "code", "hoa", "--ttl", "-1h"}, "positive duration"},
		{"revoke needs a device", []string{"admin", "revoke"}, "missing DEVICE_ID"},
		{"enrol needs a code", []string{"enrol"}, "--code is required"},
		{"history needs an id", []string{"history"}, "missing ENTITY_ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := rasoat(t, "", append(tt.args, "--db", db)...)
			if code != exitUsage || stdout != "" {
				t.Errorf("exit code %d, stdout %q; want %d and nothing", code, stdout, exitUsage)
			}
			if !strings.Contains(stderr, tt.stderrHas) || !strings.Contains(stderr, "Usage:") {
				t.Errorf("stderr does not contain %q and the usage:\n%s", tt.stderrHas, stderr)
			}
		})
	}
}

func TestAdminVerbsHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{
		{"admin", "-h"}, {"admin", "units", "-h"}, {"admin", "units", "import", "-h"}, {"admin", "people", "list", "--help"},
		{"admin", "code", "-h"}, {"help", "admin"}, {"enrol", "-h"}, {"whoami", "-h"}, {"history", "-h"}, {"help", "enrol"},
	} {
		stdout, stderr, code := rasoat(t, "", args...)
		verb := args[0]
		if verb == "help" {
			verb = args[1]
		}
		if code != exitOK || !strings.Contains(stdout, "rasoat "+verb) || stderr != "" {
			t.Errorf("%q: exit code %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
	usage, _, _ := rasoat(t, "", "help")
	for _, verb := range []string{"enrol", "whoami", "admin", "history"} {
		if !strings.Contains(usage, "\n   "+verb+" ") {
			t.Errorf("rasoat help does not list %s:\n%s", verb, usage)
		}
	}
}

func TestPeopleFile(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		want    []personJSON
		lines   []int
		errHas  string
		errLine string
	}{
		{"a byte order mark, notes and blank rows are skipped; roles and units split on ;",
			"\ufeffid,name,roles,units\n# officers\n\nbinh, Lê Văn Bình ,commune_officer; village_head,06517;06517-01\n",
			[]personJSON{{ID: "binh", Name: "Lê Văn Bình", Roles: []string{"commune_officer", "village_head"}, Units: []string{"06517", "06517-01"}}}, []int{4}, "", ""},
		{"columns may come in any order, with disabled",
			"units,roles,disabled,name,id\n06517-01,collaborator,yes,Hoa,hoa\n",
			[]personJSON{{ID: "hoa", Name: "Hoa", Roles: []string{"collaborator"}, Units: []string{"06517-01"}, Disabled: true}}, []int{2}, "", ""},
		{"a role that is not one names its line", "id,name,roles,units\nhoa,Hoa,collaborator,06517-01\nlan,Lan,chief,06517-02\n", nil, nil, `line 3: roles: "chief" is not a role`, ""},
		{"a row of the wrong width names its line", "id,name,roles,units\nhoa,Hoa,collaborator\n", nil, nil, "line 2: has a different number of fields", ""},
		{"a missing column is named", "id,name,units\n", nil, nil, "no column roles", ""},
		{"a semicolon-separated header is explained", "id;name;roles;units\n", nil, nil, "separate the columns by commas", ""},
		{"an id twice names both lines", "id,name,roles,units\nhoa,Hoa,collaborator,x\nhoa,Hoa,collaborator,y\n", nil, nil, `line 3: id: "hoa" is also on line 2`, ""},
		{"UTF-16 is refused", "\xff\xfei\x00d\x00", nil, nil, "UTF-16", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			people, lines, err := readPeopleCSV([]byte(tt.file))
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Errorf("error %v, want %q", err, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []personJSON
			for _, p := range people {
				got = append(got, personJSONOf(p))
			}
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(tt.want)
			if string(g) != string(w) || !slices.Equal(lines, tt.lines) {
				t.Errorf("got %s lines %v, want %s lines %v", g, lines, w, tt.lines)
			}
		})
	}
}

func TestAUnitTheServerRefusesIsNamedByItsLine(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []int
	}{
		{"notes and blank rows do not count", "# note\ncode,name,level,kind,parent\n20,Lạng Sơn,province,tỉnh,\n\n# villages\n06517,Quan Sơn,commune,xã,20\n", []int{3, 6}},
		{"a byte order mark and semicolons", "\ufeffcode;name;level;kind;parent\n20;Lạng Sơn;province;tỉnh;\n06517;Quan Sơn;commune;xã;20\n", []int{2, 3}},
		{"a quoted name over two lines", "code,name,level,kind,parent\n20,\"Lạng\nSơn\",province,tỉnh,\n06517,Quan Sơn,commune,xã,20\n", []int{2, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := csvRecordLines([]byte(tt.file)); !slices.Equal(got, tt.want) {
				t.Errorf("lines %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRoughly(t *testing.T) {
	for d, want := range map[time.Duration]string{72 * time.Hour: "72h", 90 * time.Minute: "1h30m", 59*time.Minute + 59*time.Second: "1h", 10 * time.Minute: "10m"} {
		if got := roughly(d); got != want {
			t.Errorf("roughly(%v) = %q, want %q", d, got, want)
		}
	}
}
