package store

import (
	"context"
)

// HouseholdFacts is what reports read of one household, kept by the store
// beside its entity states and rewritten in the push that changes any of
// them (the household, a member, a review), so that a report is a query
// where the data lives (report package), not a scoring of every household
// in memory. A Deriver makes it from the states.
type HouseholdFacts struct {
	HouseholdID string
	// New is true when the household is created by the push that derives
	// these facts: none are stored for it, so none are to be replaced.
	New         bool
	VillageCode string
	// HeadName is the name of the head of household (họ tên chủ hộ) as
	// the form gives it, for the lists an officer reads.
	HeadName string
	Urban    bool
	// MinorityHead is 1 when the head's ethnicity (dân tộc) is not Kinh, 0
	// when it is, -1 when it is not given.
	MinorityHead int
	Members      int // not removed
	// Class is the household's classification as the engine scores it now,
	// under the standard its latest review's round chooses ("POOR",
	// "NEAR_POOR", "MIDDLE", "NOT_POOR"); "" when it cannot be scored
	// (answers missing or invalid).
	Class        string
	Standard     string
	Deprivations int
	Indicators   int // the standard's indicator count
	// MDPoor: deprived in the standard's threshold or more indicators (the
	// Alkire–Foster cut-off k).
	MDPoor          bool
	IncomePerCapita int64
	Deprived        []string
	// The latest started review (none: ReviewID "").
	ReviewID   string
	Round      string // "periodic" or "regular"
	ListYear   int
	ReviewDate string
	Status     string
	StatusAt   int64  // unix seconds of the status's stamp
	Surveyor   string // the person who started the review
	DueDate    string // a regular review's last day for the decision
	// Decisions are the household's decided reviews' results, by list year.
	Decisions []DecidedFact
	// Flags are the quality checks' findings on the household's answers
	// and sync state (internal/quality; DUPLICATE_PERSON, which is across
	// households, is found by the store's query from People).
	Flags []FlagFact
	// Acks are the acknowledgements on the household's latest started
	// review, by flag code: the comment.
	Acks map[string]string
	// People are the members present, as DUPLICATE_PERSON matches them.
	People []PersonFact
}

// DecidedFact is one decided review's result as its decision records it,
// and the figures the next round's quality checks compare with.
type DecidedFact struct {
	ListYear     int
	ReviewID     string
	Standard     string
	Result       string
	Deprivations int
	// FloorAreaM2 and IncomePerCapita are the household's as decided; -1
	// when not known (not given, or decided before they were kept and
	// changed since).
	FloorAreaM2     float64
	IncomePerCapita int64
}

// FlagFact is one quality flag on a household.
type FlagFact struct {
	Code   string
	Detail string
}

// PersonFact is one member present, for DUPLICATE_PERSON.
type PersonFact struct {
	MemberID  string
	Key       string // quality.PersonKey
	FullName  string
	BirthDate string
}

// PersonMatch is a member of another household with the same
// quality.PersonKey.
type PersonMatch struct {
	Key         string
	HouseholdID string
	VillageCode string
	HeadName    string // the household's head (HouseholdFacts.HeadName), "" if not known
}

// MaxPersonMatches bounds the matches one guard's read returns: the
// decision needs to know there is one, and the officer's list names
// them; a name and birth date on hundreds of rosters is a data import
// gone wrong, which a few names show.
const MaxPersonMatches = 20

// FlagRow is one flag of a household as the read API lists it, with the
// acknowledgement on its latest review ("" and false when none).
type FlagRow struct {
	HouseholdID string
	HeadName    string // the household's (HouseholdFacts.HeadName)
	Village     string
	Code        string
	Detail      string
	Acked       bool
	Comment     string
}

// Deriver makes a household's facts from what a View holds of it.
type Deriver interface {
	Derive(ctx context.Context, householdID string, v View) (HouseholdFacts, error)
}

// ReportQuery says what a report covers: the villages, and the list year
// whose review it follows (the year a household's latest review decides).
type ReportQuery struct {
	Villages Villages
	ListYear int
	Today    string // YYYY-MM-DD: a regular review due before it is overdue
	// AnyDeprived are sets of indicators: for each, the poor households
	// deprived in any of them are counted by village (a target over
	// indicators is met on the poor households deprived in none).
	AnyDeprived [][]string
	// Watch says which households are on the watch list; none when its
	// Limit and Lines are zero.
	Watch WatchQuery
}

// WatchQuery is the watch list's rule (report.WatchIncomeMarginPercent
// and report.WatchMinDeprivations say why these numbers): a middle or
// not-poor household whose income per capita is at or under its
// standard's and area's Max (and known: a household scored on the form's
// score A has no income per capita), or a household not poor and not deprived in
// the standard's threshold whose deprivations are MinDeprivations or more.
type WatchQuery struct {
	Lines           []WatchLine
	MinDeprivations int
	// Limit bounds the households listed; all are counted.
	Limit int
}

// WatchLine is a standard's line for an area, and the income at or under
// which a household above it is near it.
type WatchLine struct {
	Standard  string
	Urban     bool
	Line, Max int64
}

// ReportRows are a report's figures as the store's queries give them,
// grouped finely enough for every breakdown to be a sum of groups.
type ReportRows struct {
	Groups      []ReportGroup
	Indicators  []ReportIndicator
	Progress    []ReportProgress
	Transitions []ReportTransition
	// Previous are the results decided for the list year before, by
	// village.
	Previous []ReportDecided
	// AnyDeprived counts, for each of the query's sets (by its index) and
	// village, the poor households deprived in any of its indicators.
	AnyDeprived []ReportAnyDeprived
	// Watch are the first households of the watch list, most at risk
	// first: both reasons before one, then more deprivations, then lower
	// income, then by id; WatchTotal counts them all.
	Watch      []WatchedHousehold
	WatchTotal int
}

// ReportTransition counts the households decided for the list year with
// result To whose decided result the year before was From ("" when not
// decided then), and whether they were decided poor for a year before
// that. A household's result for a year is its latest decided review's
// of that year (the greatest review id: UUIDv7, the review started last),
// so a regular review that changes the list counts once.
type ReportTransition struct {
	From, To    string
	PoorEarlier bool
	Households  int
}

// ReportDecided counts one village's households with a result decided
// for a list year, and the poor and near-poor among them (each
// household's latest decided review of that year).
type ReportDecided struct {
	Village                 string
	Decided, Poor, NearPoor int
}

// ReportAnyDeprived counts one village's poor households deprived in any
// indicator of the query's set number Set.
type ReportAnyDeprived struct {
	Set     int
	Village string
	Poor    int
}

// WatchedHousehold is one household of the watch list.
type WatchedHousehold struct {
	HouseholdID     string
	HeadName        string // HouseholdFacts.HeadName
	Village         string
	Class           string
	Standard        string
	Urban           bool
	IncomePerCapita int64
	Deprivations    int
	Deprived        []string // sorted
	NearLine        bool     // income near its line
	ManyDeprived    bool     // deprived in MinDeprivations or more
}

// ReportGroup counts the households of one village, area and head's
// ethnicity.
type ReportGroup struct {
	Village      string
	Urban        bool
	MinorityHead int
	Households   int
	Reviewed     int // whose latest review decides the query's list year
	Poor         int
	NearPoor     int
	Middle       int
	NotPoor      int
	Unscored     int
	MDPoor       int     // Alkire–Foster: deprived in k or more
	MDShareSum   float64 // the sum of their deprivation shares (d_i / d)
}

// ReportIndicator counts the households deprived in one indicator, and
// the poor among them.
type ReportIndicator struct {
	Indicator    string
	Deprived     int
	DeprivedPoor int
}

// ReportProgress counts the reviews of the list year by village,
// collaborator and status, and those overdue.
type ReportProgress struct {
	Village    string
	Surveyor   string
	Status     string
	Households int
	Overdue    int
}

// FlagsQuery says which households' flags a listing covers: those of the
// villages whose latest review is not decided or refused (a closed review
// takes no acknowledgement), and, when ListYear is not 0, only households
// whose latest review decides that list year.
type FlagsQuery struct {
	Villages Villages
	ListYear int
}
