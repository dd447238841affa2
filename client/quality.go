package client

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/quality"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
)

// Acknowledge writes an officer's acknowledgement of a quality flag
// (xác nhận cờ kiểm tra, internal/quality) on the household's latest
// started review: the review's field ack.CODE, whose value is the comment
// saying why the flag does not change the result. It syncs like any
// write, and the server refuses it from a role that may not write it
// (only the commune officer and the chair may) and on a decided review.
// An empty comment withdraws the acknowledgement (null). It returns the
// review's id.
func (c *Client) Acknowledge(ctx context.Context, householdID string, code quality.Code, comment string) (string, error) {
	r, ok := quality.RuleOf(code)
	switch {
	case !ok:
		return "", fieldError("code", "%q is not a quality check's code", code)
	case !r.Ackable:
		return "", fieldError("code", "%s is not acknowledged: resolve the conflict by writing the value that stands (rasoat conflicts)", code)
	}
	latest, err := c.latestReview(ctx, householdID)
	if err != nil {
		return "", err
	}
	if latest == nil {
		return "", fmt.Errorf("acknowledge %s on household %s: %w: no review is started", code, householdID, ErrWorkflow)
	}
	if latest.Status.Locks() {
		return "", fmt.Errorf("acknowledge %s on household %s: %w: review %s is decided; an officer reopens it first", code, householdID, ErrWorkflow, latest.ID)
	}
	value := []byte("null")
	if comment != "" {
		if value, err = json.Marshal(comment); err != nil {
			return "", err
		}
	}
	path := quality.AckPath(code)
	v, err := entity.Canonical(rasoatv1.EntityKind_ENTITY_KIND_REVIEW, path, value)
	if err != nil {
		return "", renamed("comment", err)
	}
	err = c.write(ctx, "acknowledge flag", func(w *writeTx) error {
		e, err := w.loadReview(latest.ID)
		if err != nil {
			return err
		}
		return w.set(e, path, v, "comment")
	})
	return latest.ID, err
}

// Acks returns the acknowledgements a review holds, by flag code: the
// comments.
func (r Review) Acks() map[quality.Code]string { return r.acks }
