// Package flows holds the orchestration logic of the classic Durable
// Functions samples, ported to durablewasm. It has no build tags so it is
// unit-tested natively with durabletest; samples/guest registers it in a
// Wasm guest module.
package flows

import (
	durable "github.com/durablewasm/durablewasm/guest-sdk"
)

// Register registers every sample orchestrator and activity with r.
func Register(r durable.Registrar) {
	r.RegisterOrchestrator("E1_HelloSequence", HelloSequence)
	r.RegisterActivity("E1_SayHello", SayHello)
	r.RegisterOrchestrator("HelloWorld", HelloWorld)
	r.RegisterActivity("SayHello", SayHello)
	r.RegisterOrchestrator("E2_BackupSiteContent", BackupSiteContent)
	r.RegisterActivity("E2_GetFileList", GetFileList)
	r.RegisterActivity("E2_CopyFileToBlob", CopyFileToBlob)
	r.RegisterOrchestrator("E3_Monitor", Monitor)
	r.RegisterActivity("E3_GetIsClear", GetIsClear)
	r.RegisterActivity("E3_SendGoodWeatherAlert", SendGoodWeatherAlert)
	r.RegisterOrchestrator("E4_SmsPhoneVerification", SmsPhoneVerification)
	r.RegisterActivity("E4_SendSmsChallenge", SendSmsChallenge)
	r.RegisterOrchestrator("Counter", Counter)
	r.RegisterOrchestrator("E5_SubOrchestration", SubOrchestration)
	registerBench(r)
}
