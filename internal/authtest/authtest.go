// Package authtest sets up who may use a test server: a commune's units,
// people with roles, enrolment codes, and devices enrolled through the
// real EnrolService. Tests of sync, robustness and the system use it so
// that they run with authentication and scopes on, as the field does.
package authtest

import (
	"context"
	"errors"
	"fmt"
	"time"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/auth"
	"github.com/rasoat/rasoat/server/directory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// Store is what Seed writes to (server/store/sqlite).
type Store interface {
	PutUnits(ctx context.Context, units []*rasoatv1.Unit, served string) (int, int, error)
	PutPeople(ctx context.Context, people []directory.Person) (int, int, error)
	IssueCode(ctx context.Context, c directory.Code) error
}

// Province and Commune are the test tree's codes: Lạng Sơn (20) and xã
// Quan Sơn (06517).
const (
	Province = "20"
	Commune  = "06517"
)

// Village returns the code of the test commune's village n ("06517-01").
func Village(n int) string { return fmt.Sprintf("%s-%02d", Commune, n) }

// Units is the province, the commune and its villages 1..n.
func Units(n int) []*rasoatv1.Unit {
	out := []*rasoatv1.Unit{
		{Code: Province, Name: "Lạng Sơn", Level: rasoatv1.UnitLevel_UNIT_LEVEL_PROVINCE, Kind: "tỉnh"},
		{Code: Commune, Name: "Quan Sơn", Level: rasoatv1.UnitLevel_UNIT_LEVEL_COMMUNE, Kind: "xã", ParentCode: Province},
	}
	for i := 1; i <= n; i++ {
		out = append(out, &rasoatv1.Unit{Code: Village(i), Name: fmt.Sprintf("Thôn %d", i), Level: rasoatv1.UnitLevel_UNIT_LEVEL_VILLAGE, Kind: "thôn", ParentCode: Commune})
	}
	return out
}

// Person is a person with roles acting in units.
func Person(id string, roles []rasoatv1.Role, units ...string) directory.Person {
	return directory.Person{ID: id, Name: "Người " + id, Roles: roles, Units: units}
}

// Collaborator, Officer and so on are the usual people.
func Collaborator(id string, villages ...string) directory.Person {
	return Person(id, []rasoatv1.Role{rasoatv1.Role_ROLE_COLLABORATOR}, villages...)
}

func Officer(id string) directory.Person {
	return Person(id, []rasoatv1.Role{rasoatv1.Role_ROLE_COMMUNE_OFFICER}, Commune)
}

func Admin(id string) directory.Person {
	return Person(id, []rasoatv1.Role{rasoatv1.Role_ROLE_ADMIN})
}

// Seed stores the commune with villages villages (served by the store) and
// the people.
func Seed(ctx context.Context, st Store, villages int, people ...directory.Person) error {
	if _, _, err := st.PutUnits(ctx, Units(villages), Commune); err != nil {
		return fmt.Errorf("seed units: %w", err)
	}
	if len(people) > 0 {
		if _, _, err := st.PutPeople(ctx, people); err != nil {
			return fmt.Errorf("seed people: %w", err)
		}
	}
	return nil
}

// Code issues an enrolment code for person, valid for a day.
func Code(ctx context.Context, st Store, person string) (string, error) {
	var err error
	for range 5 { // a clash of 20-bit code ids: draw again, as the admin service does
		c := auth.NewCode()
		err = st.IssueCode(ctx, directory.Code{ID: c.ID, Hash: c.Hash, PersonID: person, ExpiresAt: time.Now().Add(24 * time.Hour), Attempts: directory.CodeAttempts})
		if err == nil || errors.Is(err, directory.ErrNotFound) {
			return c.Text, err
		}
	}
	return "", err
}

// Enrol issues a code for person and redeems it over conn for replica,
// returning the token.
func Enrol(ctx context.Context, st Store, conn grpc.ClientConnInterface, person, replica string) (string, error) {
	code, err := Code(ctx, st, person)
	if err != nil {
		return "", err
	}
	res, err := rasoatv1.NewEnrolServiceClient(conn).Enrol(ctx, &rasoatv1.EnrolRequest{Code: code, ReplicaId: replica, DeviceName: "test " + person})
	if err != nil {
		return "", fmt.Errorf("enrol %s: %w", person, err)
	}
	return res.GetToken(), nil
}

// Bearer is a dial option sending token on every call, over plain
// connections too (tests listen on loopback).
func Bearer(token string) grpc.DialOption { return grpc.WithPerRPCCredentials(bearer(token)) }

type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

var _ credentials.PerRPCCredentials = bearer("")
