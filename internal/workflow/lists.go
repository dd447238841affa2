package workflow

// The lists the procedure publishes: the posted lists (danh sách niêm yết
// công khai) while results are open to complaints, and the recognition
// decision's lists (form 02). They live here, beside the procedure, so
// that the tablet (client), the exports (internal/export) and a page the
// server serves group households the same way.

// Lists of the decision form (form 02), as map keys of DecisionList.Lists
// and PostedList.Lists. A household is on the list of its result, except
// that one leaving poverty or near-poverty is on the list of those who
// left (ListsOf).
const (
	ListPoor            = "POOR"              // danh sách hộ nghèo
	ListNearPoor        = "NEAR_POOR"         // danh sách hộ cận nghèo
	ListLeftPoverty     = "LEFT_POVERTY"      // danh sách hộ thoát nghèo
	ListLeftNearPoverty = "LEFT_NEAR_POVERTY" // danh sách hộ thoát cận nghèo
	ListMiddle          = "MIDDLE"            // hộ có mức sống trung bình
	ListNotPoor         = "NOT_POOR"          // hộ không thuộc các diện trên
	// ListUnscored is a posted list's household that cannot be scored now
	// (an answer missing or invalid): shown, so that nothing posted is
	// left off in silence; a decision never holds one (Decide refuses).
	ListUnscored = "UNSCORED"
)

// ListOrder is the lists in the form's order.
var ListOrder = []string{ListPoor, ListNearPoor, ListLeftPoverty, ListLeftNearPoverty, ListMiddle, ListNotPoor, ListUnscored}

// ListName is a list's title as the form prints it.
func ListName(list string) string {
	switch list {
	case ListPoor:
		return "Danh sách hộ nghèo"
	case ListNearPoor:
		return "Danh sách hộ cận nghèo"
	case ListLeftPoverty:
		return "Danh sách hộ thoát nghèo"
	case ListLeftNearPoverty:
		return "Danh sách hộ thoát cận nghèo"
	case ListMiddle:
		return "Hộ có mức sống trung bình"
	case ListNotPoor:
		return "Hộ không thuộc các diện trên"
	case ListUnscored:
		return "Hộ chưa đủ thông tin để xếp loại"
	}
	return list
}

// ResultName is a result (a classification without its prefix, as a
// Decision records it) as an officer reads it; "" for none.
func ResultName(result string) string {
	switch result {
	case "POOR":
		return "hộ nghèo"
	case "NEAR_POOR":
		return "hộ cận nghèo"
	case "MIDDLE":
		return "hộ có mức sống trung bình"
	case "NOT_POOR":
		return "không thuộc các diện trên"
	}
	return result
}

// ListsOf returns the lists a household goes on, given its result and the
// one decided for the list year before ("" none): its result's list, or,
// when it leaves poverty or near-poverty for neither, the list of those
// who left; a poor household becoming near-poor is on the near-poor list
// and on the list of those who left poverty (thoát nghèo). An empty result
// (not scorable) is ListUnscored.
func ListsOf(before, result string) []string {
	scored := result == "POOR" || result == "NEAR_POOR"
	switch {
	case result == "":
		return []string{ListUnscored}
	case before == "POOR" && !scored:
		return []string{ListLeftPoverty}
	case before == "NEAR_POOR" && !scored:
		return []string{ListLeftNearPoverty}
	case before == "POOR" && result == "NEAR_POOR":
		return []string{ListNearPoor, ListLeftPoverty}
	}
	return []string{result}
}

// DecisionList is a recognition decision (quyết định công nhận, form 02)
// as one copy of the data holds it: the households decided in it, by
// list, and a digest over them, so that the posted list, the certificates
// and the province's copy can be checked to be the list decided.
type DecisionList struct {
	Number string
	Date   string
	// Lists: ListPoor, ListNearPoor, ListLeftPoverty, ListLeftNearPoverty
	// (ListsOf); the others decided in it are under their result.
	Lists map[string][]DecidedHousehold
	// Digest is SHA-256 over every household decided in it, in review id
	// order: its review, household, result and seal. Any change to one of
	// them, or a household added or left out, changes it.
	Digest string
	// Changed lists the households whose answers changed since (their
	// seal no longer matches).
	Changed []string
}

// DecidedHousehold is one line of a decision's lists.
type DecidedHousehold struct {
	ReviewID, HouseholdID, VillageCode string
	Year                               int
	Result, Before                     string // the result, and the one decided the year before ("" none)
	Seal                               string
}

// PostedList is what is posted for complaints (danh sách niêm yết công
// khai): the households whose review is posted or under re-check, by the
// list their provisional result puts them on (ListsOf), as the decision
// will group them if nothing changes.
type PostedList struct {
	// Unit is the commune or village asked for ("" for every village the
	// copy holds).
	Unit  string
	Lists map[string][]PostedHousehold
}

// Len is the number of households posted (one on two lists counted once).
func (p PostedList) Len() int {
	seen := map[string]bool{}
	for _, l := range p.Lists {
		for _, h := range l {
			seen[h.ReviewID] = true
		}
	}
	return len(seen)
}

// PostedHousehold is one line of a posted list.
type PostedHousehold struct {
	ReviewID, HouseholdID, VillageCode string
	HeadName, Address                  string
	Year                               int    // the list year the review decides
	Round                              string // "periodic" or "regular"
	Status                             State  // Posted or Rechecking
	// Result is the household's classification now, scored under its
	// review's round (what the chair would decide), "" when it cannot be
	// scored (Problem says why); Before the result decided for the year
	// before ("" none).
	Result, Before string
	// Deprivations and IncomePerCapita (VND a month; 0 when scored by the
	// form's score A) are what the village reads the result from.
	Deprivations    int
	IncomePerCapita int64
	Problem         string
	// Since is the day (YYYY-MM-DD) its current status was written.
	Since string
	// PostedOn is the posting day when the copy knows it: the status was
	// written by the posting itself. After a complaint the status was
	// written by the re-check, and the posting day is the server's record
	// (HistoryService): "".
	PostedOn string
	// ComplaintsUntil is the last day complaints are received (the
	// province's PeriodComplaints counted from PostedOn), "" when the
	// period is not set or the posting day not known.
	ComplaintsUntil string
}
