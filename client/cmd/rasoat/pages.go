package main

import (
	"context"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
)

// The admin verbs read whole lists; the server answers them a page at a
// time (adminsvc.MaxPage), so these follow next_page_token to the end.

func allUnits(ctx context.Context, api rasoatv1.AdminServiceClient) (*rasoatv1.ListUnitsResponse, error) {
	all := &rasoatv1.ListUnitsResponse{}
	for token := ""; ; {
		res, err := api.ListUnits(ctx, &rasoatv1.ListUnitsRequest{PageToken: token})
		if err != nil {
			return nil, err
		}
		all.Units, all.ServedUnitCode = append(all.Units, res.GetUnits()...), res.GetServedUnitCode()
		if token = res.GetNextPageToken(); token == "" {
			return all, nil
		}
	}
}

func allPeople(ctx context.Context, api rasoatv1.AdminServiceClient) (*rasoatv1.ListPeopleResponse, error) {
	all := &rasoatv1.ListPeopleResponse{}
	for token := ""; ; {
		res, err := api.ListPeople(ctx, &rasoatv1.ListPeopleRequest{PageToken: token})
		if err != nil {
			return nil, err
		}
		all.People = append(all.People, res.GetPeople()...)
		if token = res.GetNextPageToken(); token == "" {
			return all, nil
		}
	}
}

func allDevices(ctx context.Context, api rasoatv1.AdminServiceClient, person string) (*rasoatv1.ListDevicesResponse, error) {
	all := &rasoatv1.ListDevicesResponse{}
	for token := ""; ; {
		res, err := api.ListDevices(ctx, &rasoatv1.ListDevicesRequest{PersonId: person, PageToken: token})
		if err != nil {
			return nil, err
		}
		all.Devices = append(all.Devices, res.GetDevices()...)
		if token = res.GetNextPageToken(); token == "" {
			return all, nil
		}
	}
}
