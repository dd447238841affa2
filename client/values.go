package client

import (
	"errors"
	"fmt"
	"strings"

	"github.com/rasoat/rasoat/internal/entity"
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
		return &entity.FieldError{Field: field, Desc: desc}
	}
	return fmt.Errorf("%s: %w", field, err)
}
