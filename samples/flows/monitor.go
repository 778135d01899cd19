package flows

import (
	"errors"
	"time"

	durable "github.com/durablewasm/durablewasm/guest-sdk"
)

// MonitorRequest is the input of E3_Monitor.
type MonitorRequest struct {
	// Location is the city whose weather is watched.
	Location string `json:"location"`
	// Phone receives the alert.
	Phone string `json:"phone"`
	// ExpiryTime ends the monitor when no alert was sent by then.
	ExpiryTime time.Time `json:"expiryTime"`
	// PollingInterval between checks; default 30 minutes.
	PollingInterval time.Duration `json:"pollingInterval,omitempty"`
	// Checks counts the checks done so far (carried across ContinueAsNew).
	Checks int `json:"checks,omitempty"`
}

// MonitorResult is the output of E3_Monitor.
type MonitorResult struct {
	// Alerted is true when the weather cleared and the alert was sent.
	Alerted bool `json:"alerted"`
	// Checks is the number of weather checks made.
	Checks int `json:"checks"`
}

// DefaultPollingInterval is E3_Monitor's polling interval when the request
// sets none.
const DefaultPollingInterval = 30 * time.Minute

// Monitor (E3_Monitor) checks the weather at the request's location with
// E3_GetIsClear; when it is clear it sends an alert with
// E3_SendGoodWeatherAlert and completes. Otherwise it waits for a durable
// timer and continues as new with an updated check count, until ExpiryTime.
func Monitor(ctx *durable.OrchestrationContext) (any, error) {
	var req MonitorRequest
	if err := ctx.GetInput(&req); err != nil {
		return nil, err
	}
	if req.Location == "" || req.ExpiryTime.IsZero() {
		return nil, errors.New("location and expiryTime are required")
	}
	interval := req.PollingInterval
	if interval <= 0 {
		interval = DefaultPollingInterval
	}
	now := ctx.CurrentUTCDateTime()
	if !now.Before(req.ExpiryTime) {
		ctx.Logger().Info("monitor expiring", "location", req.Location)
		return MonitorResult{Alerted: false, Checks: req.Checks}, nil
	}
	var clear bool
	if err := ctx.CallActivity("E3_GetIsClear", req.Location).Await(&clear); err != nil {
		return nil, err
	}
	req.Checks++
	if clear {
		if err := ctx.CallActivity("E3_SendGoodWeatherAlert", req.Phone).Await(nil); err != nil {
			return nil, err
		}
		return MonitorResult{Alerted: true, Checks: req.Checks}, nil
	}
	next := now.Add(interval)
	if next.After(req.ExpiryTime) {
		next = req.ExpiryTime
	}
	if err := ctx.CreateTimer(next).Await(nil); err != nil {
		return nil, err
	}
	return nil, ctx.ContinueAsNew(req)
}

// GetIsClear (activity E3_GetIsClear) reports whether the sky is clear at the
// input location. The samples have no weather service: "Phoenix" and
// "Las Vegas" are always clear, every other place never is.
func GetIsClear(ctx *durable.ActivityContext) (any, error) {
	var location string
	if err := ctx.GetInput(&location); err != nil {
		return nil, err
	}
	return location == "Phoenix" || location == "Las Vegas", nil
}

// SendGoodWeatherAlert (activity E3_SendGoodWeatherAlert) "texts" the input
// phone number; it only logs.
func SendGoodWeatherAlert(ctx *durable.ActivityContext) (any, error) {
	var phone string
	if err := ctx.GetInput(&phone); err != nil {
		return nil, err
	}
	ctx.Logger().Info("the weather's clear outside! go take a walk!", "phone", phone)
	return nil, nil
}
