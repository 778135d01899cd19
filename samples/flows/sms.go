package flows

import (
	"errors"
	"time"

	durable "github.com/durablewasm/durablewasm/guest-sdk"
)

// SmsChallengeTimeout is how long E4_SmsPhoneVerification waits for correct
// answers in total.
const SmsChallengeTimeout = 90 * time.Second

// SmsMaxAttempts is how many answers E4_SmsPhoneVerification accepts.
const SmsMaxAttempts = 3

// SmsPhoneVerification (E4_SmsPhoneVerification) sends a challenge code with
// E4_SendSmsChallenge, then waits for SmsChallengeResponse events carrying
// the code, racing each wait (WhenAny) against one timer set
// SmsChallengeTimeout after the start. It returns true when a correct code
// arrived within SmsMaxAttempts answers before the timer, else false.
func SmsPhoneVerification(ctx *durable.OrchestrationContext) (any, error) {
	var phone string
	if err := ctx.GetInput(&phone); err != nil {
		return nil, err
	}
	if phone == "" {
		return nil, errors.New("a phone number is required as input")
	}
	var code int
	if err := ctx.CallActivity("E4_SendSmsChallenge", phone).Await(&code); err != nil {
		return nil, err
	}
	timeout := ctx.CreateTimer(ctx.CurrentUTCDateTime().Add(SmsChallengeTimeout))
	for attempt := 1; attempt <= SmsMaxAttempts; attempt++ {
		response := ctx.WaitForExternalEvent("SmsChallengeResponse")
		winner, err := ctx.WhenAny(response, timeout)
		if err != nil {
			return nil, err
		}
		if winner != response {
			ctx.Logger().Info("challenge timed out", "attempt", attempt)
			return false, nil
		}
		var answer int
		if err := response.Await(&answer); err != nil {
			return nil, err
		}
		if answer == code {
			ctx.Cancel(timeout) // the timer is not awaited any more
			return true, nil
		}
		ctx.Logger().Info("wrong answer", "attempt", attempt)
	}
	return false, nil
}

// ChallengeCode returns the code E4_SendSmsChallenge sends to phone: a
// deterministic 4-digit number derived from a hash of the number (a real
// implementation would draw a random one).
func ChallengeCode(phone string) int { return 1000 + int(hash32(phone)%9000) }

// SendSmsChallenge (activity E4_SendSmsChallenge) "texts" a challenge code to
// the input phone number and returns the code. Since no SMS is sent, it logs
// the code through its activity logger (the worker log shows
// `msg="sending verification code" phone=… code=…`), so that whoever tries
// the sample can answer with raise-event.
func SendSmsChallenge(ctx *durable.ActivityContext) (any, error) {
	var phone string
	if err := ctx.GetInput(&phone); err != nil {
		return nil, err
	}
	code := ChallengeCode(phone)
	ctx.Logger().Info("sending verification code", "phone", phone, "code", code)
	return code, nil
}
