package client

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/rasoat/rasoat/internal/entity"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/survey"
)

// fieldError is the error for bad input, naming the field in the
// household's JSON form ("headName", "members[2].birthDate").
func fieldError(field, format string, args ...any) error {
	return &entity.FieldError{Field: field, Desc: fmt.Sprintf(format, args...)}
}

// renamed returns err as a FieldError naming field: entity's FieldErrors
// name the wire Change's fields ("value"), which mean nothing to the caller.
func renamed(field string, err error) error {
	var fe *entity.FieldError
	if errors.As(err, &fe) {
		desc := fe.Desc
		if fe.Field != "value" && !strings.HasSuffix(field, fe.Field) {
			desc = fe.Field + ": " + desc
		}
		return &entity.FieldError{Field: field, Desc: desc, OverLimit: fe.OverLimit, Reason: fe.Reason}
	}
	return fmt.Errorf("%s: %w", field, err)
}

// ErrInvalidAnswer is the Reason (entity.FieldError.Reason) of the error
// for an answer the scoring engine refuses: out of the range it accepts (a
// floor area of −3 m², a score A over 10000), or contradicting the
// household (a birth date after the review date). The FieldError names the
// field and its Desc the engine's rule, with the range allowed.
var ErrInvalidAnswer = errors.New("answer refused by the standard")

// written is what one write set, by entity id and path, with the name the
// caller knows each field by.
type written map[[2]string]string

func (wr written) add(entityID, path, name string) {
	wr[[2]string{entityID, path}] = name
}

// wrote records an answer set has written, for checkAnswers: a household's
// or member's field, unless the value clears it.
func (w *writeTx) wrote(e *ent, path string, value []byte, name string) {
	if e.kind != rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD && e.kind != rasoatv1.EntityKind_ENTITY_KIND_MEMBER || clears(e.kind, path, value) {
		return
	}
	if !slices.Contains(w.hhs, e.hh) {
		w.hhs = append(w.hhs, e.hh)
	}
	w.wr.add(e.id, path, name)
}

// checkAnswers checks the answers of household hh as they stand in w,
// written included, with the scoring engine (the standard in force on its
// review date, or, with none yet, every standard the client knows: a value
// is refused only if none takes it), and refuses the first answer in wr
// that the engine names as invalid. Answers not written here are not
// looked at: a household is entered a field at a time, and what is still
// missing is for show, not for the door. So the tablet refuses at entry
// what the engine would refuse at scoring, with the same rule and words.
func (w *writeTx) checkAnswers(hh string, wr written) error {
	if len(wr) == 0 {
		return nil
	}
	h, err := w.materialise(hh)
	if err != nil {
		return err
	}
	stds := w.c.reg.Standards()
	if s, err := w.c.reg.Choose("", h.GetReviewDate()); err == nil {
		stds = []*survey.Standard{s}
	}
	var first error
	for _, s := range stds {
		_, err := s.Assess(h)
		var ve *survey.ValidationError
		if !errors.As(err, &ve) {
			return nil // this standard takes every answer (or fails otherwise: not the door's to say)
		}
		refused := answerRefused(h, ve, wr)
		if refused == nil {
			return nil
		}
		if first == nil {
			first = refused
		}
	}
	return first
}

// answerRefused returns the error for the first violation of ve on a field
// of wr, or nil. A violation names a path of the household's JSON form:
// "housing.floorAreaM2", "income.scoreA" (in the written "income"),
// "policyFlags[1]", "members[2].birthDate" (members in h's order).
func answerRefused(h *rasoatv1.Household, ve *survey.ValidationError, wr written) error {
	for _, v := range ve.Violations {
		id, path := h.GetId(), v.Field
		if rest, ok := strings.CutPrefix(path, "members["); ok {
			i, after, ok := strings.Cut(rest, "].")
			n, err := strconv.Atoi(i)
			if !ok || err != nil || n < 0 || n >= len(h.GetMembers()) {
				continue
			}
			id, path = h.GetMembers()[n].GetId(), after
		}
		for p := path; p != ""; p = parentPath(p) {
			if name, ok := wr[[2]string{id, p}]; ok {
				// The engine's path within the written value: "income.scoreA".
				return &entity.FieldError{Field: name + path[len(p):], Desc: v.Description, Reason: ErrInvalidAnswer}
			}
		}
	}
	return nil
}

// parentPath cuts the last element of a path: "income.scoreA" → "income",
// "policyFlags[1]" → "policyFlags", "area" → "".
func parentPath(p string) string {
	if i := strings.LastIndexAny(p, ".["); i >= 0 {
		return p[:i]
	}
	return ""
}

// materialise builds household hh as w holds it: what is stored, with what
// w has written so far, new members included.
func (w *writeTx) materialise(hh string) (*rasoatv1.Household, error) {
	h, err := w.load(hh)
	if err != nil {
		return nil, err
	}
	var ids []string
	if !w.made[hh] { // a household made in w has no stored members to read
		rows, err := w.tx.QueryContext(w.ctx, "SELECT id FROM entities WHERE household_id = ? AND kind = ?", hh, int64(rasoatv1.EntityKind_ENTITY_KIND_MEMBER))
		if err != nil {
			return nil, fmt.Errorf("read members of %s: %w", hh, err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read members of %s: %w", hh, err)
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read members of %s: %w", hh, err)
		}
	}
	ids = append(ids, w.newMs[hh]...) // members made in w, not stored yet
	members := make([]entity.State, 0, len(ids))
	for _, id := range ids {
		e, err := w.load(id)
		if err != nil {
			return nil, err
		}
		if e.state.ID != "" {
			members = append(members, e.state)
		}
	}
	return entity.Materialise(h.state, members)
}

// clears reports whether v (canonical) is what null writes at path: the
// field cleared, or set to its default (false, 0, "", an enum's
// _UNSPECIFIED). Clearing an answer is never refused at the door: an
// answer missing is for show to list.
func clears(kind rasoatv1.EntityKind, path string, v []byte) bool {
	null, err := entity.Canonical(kind, path, []byte("null"))
	return err == nil && string(null) == string(v)
}
