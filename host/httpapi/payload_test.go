package httpapi

import (
	"testing"
)

// The spec's example (durable-http-api.md §5.1), byte for byte.
func TestCheckStatusPayloadMatchesDurableFunctions(t *testing.T) {
	p := ManagementPayload("http://localhost:7071/runtime/webhooks/durabletask", "TestHubName", "Storage", "XXX", "7b5e0d64e19a4a36a7fb1fcb45cc6f3d")
	got, err := encodeJSON(checkStatus(p))
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"id":"7b5e0d64e19a4a36a7fb1fcb45cc6f3d","statusQueryGetUri":"http://localhost:7071/runtime/webhooks/durabletask/instances/7b5e0d64e19a4a36a7fb1fcb45cc6f3d?taskHub=TestHubName&connection=Storage&code=XXX","sendEventPostUri":"http://localhost:7071/runtime/webhooks/durabletask/instances/7b5e0d64e19a4a36a7fb1fcb45cc6f3d/raiseEvent/{eventName}?taskHub=TestHubName&connection=Storage&code=XXX","terminatePostUri":"http://localhost:7071/runtime/webhooks/durabletask/instances/7b5e0d64e19a4a36a7fb1fcb45cc6f3d/terminate?reason={text}&taskHub=TestHubName&connection=Storage&code=XXX","purgeHistoryDeleteUri":"http://localhost:7071/runtime/webhooks/durabletask/instances/7b5e0d64e19a4a36a7fb1fcb45cc6f3d?taskHub=TestHubName&connection=Storage&code=XXX","restartPostUri":"http://localhost:7071/runtime/webhooks/durabletask/instances/7b5e0d64e19a4a36a7fb1fcb45cc6f3d/restart?taskHub=TestHubName&connection=Storage&code=XXX","suspendPostUri":"http://localhost:7071/runtime/webhooks/durabletask/instances/7b5e0d64e19a4a36a7fb1fcb45cc6f3d/suspend?reason={text}&taskHub=TestHubName&connection=Storage&code=XXX","resumePostUri":"http://localhost:7071/runtime/webhooks/durabletask/instances/7b5e0d64e19a4a36a7fb1fcb45cc6f3d/resume?reason={text}&taskHub=TestHubName&connection=Storage&code=XXX"}`
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

// The spec's binding example (§6.4), byte for byte.
func TestClientBindingMatchesDurableFunctions(t *testing.T) {
	rpc := "http://127.0.0.1:17071/durabletask/"
	b := NewClientBinding("http://localhost:7071/runtime/webhooks/durabletask", "TestHubName", nil, "Storage", "XXX", &rpc)
	got, err := encodeJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"taskHubName":"TestHubName","connectionName":null,"creationUrls":{"createNewInstancePostUri":"http://localhost:7071/runtime/webhooks/durabletask/orchestrators/{functionName}[/{instanceId}]?code=XXX","createAndWaitOnNewInstancePostUri":"http://localhost:7071/runtime/webhooks/durabletask/orchestrators/{functionName}[/{instanceId}]?timeout={timeoutInSeconds}&pollingInterval={intervalInSeconds}&code=XXX"},"managementUrls":{"id":"INSTANCEID","statusQueryGetUri":"http://localhost:7071/runtime/webhooks/durabletask/instances/INSTANCEID?taskHub=TestHubName&connection=Storage&code=XXX","sendEventPostUri":"http://localhost:7071/runtime/webhooks/durabletask/instances/INSTANCEID/raiseEvent/{eventName}?taskHub=TestHubName&connection=Storage&code=XXX","terminatePostUri":"http://localhost:7071/runtime/webhooks/durabletask/instances/INSTANCEID/terminate?reason={text}&taskHub=TestHubName&connection=Storage&code=XXX","rewindPostUri":"http://localhost:7071/runtime/webhooks/durabletask/instances/INSTANCEID/rewind?reason={text}&taskHub=TestHubName&connection=Storage&code=XXX","purgeHistoryDeleteUri":"http://localhost:7071/runtime/webhooks/durabletask/instances/INSTANCEID?taskHub=TestHubName&connection=Storage&code=XXX","restartPostUri":"http://localhost:7071/runtime/webhooks/durabletask/instances/INSTANCEID/restart?taskHub=TestHubName&connection=Storage&code=XXX","suspendPostUri":"http://localhost:7071/runtime/webhooks/durabletask/instances/INSTANCEID/suspend?reason={text}&taskHub=TestHubName&connection=Storage&code=XXX","resumePostUri":"http://localhost:7071/runtime/webhooks/durabletask/instances/INSTANCEID/resume?reason={text}&taskHub=TestHubName&connection=Storage&code=XXX"},"baseUrl":"http://localhost:7071/runtime/webhooks/durabletask","requiredQueryStringParameters":"code=XXX","rpcBaseUrl":"http://127.0.0.1:17071/durabletask/"}`
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestManagementPayloadEscaping(t *testing.T) {
	p := ManagementPayload("http://h/runtime/webhooks/durabletask/", "My Hub", "a&b", "k+/=", "a b+c:é")
	const wantStatus = "http://h/runtime/webhooks/durabletask/instances/a%20b%2Bc%3A%C3%A9?taskHub=My+Hub&connection=a%26b&code=k%2B%2F%3D"
	if p.StatusQueryGetURI != wantStatus {
		t.Fatalf("statusQueryGetUri %s\nwant %s", p.StatusQueryGetURI, wantStatus)
	}
	if p.ID != "a b+c:é" {
		t.Fatalf("id %q", p.ID)
	}
	// Dot segments are escaped (curl and Go would otherwise resolve them
	// away); other characters that url.PathEscape leaves are escaped too.
	for id, seg := range map[string]string{".": "%2E", "..": "%2E%2E", "...": "...", "a.b": "a.b", "a&b=c;d@e$f,g": "a%26b%3Dc%3Bd%40e%24f%2Cg", "%2e": "%252e"} {
		if p := ManagementPayload("http://h", "H", "C", "", id); p.StatusQueryGetURI != "http://h/instances/"+seg+"?taskHub=H&connection=C" {
			t.Errorf("id %q: %s", id, p.StatusQueryGetURI)
		}
	}
	p = ManagementPayload("http://h/runtime/webhooks/durabletask", "H", "C", "", "x")
	if p.RestartPostURI != "http://h/runtime/webhooks/durabletask/instances/x/restart?taskHub=H&connection=C" {
		t.Fatalf("without code: %s", p.RestartPostURI)
	}
}

func TestClientBindingWithoutCode(t *testing.T) {
	conn := "Redis"
	b := NewClientBinding("http://h/runtime/webhooks/durabletask", "H", &conn, "Redis", "", nil)
	if b.CreationURLs.CreateNewInstancePostURI != "http://h/runtime/webhooks/durabletask/orchestrators/{functionName}[/{instanceId}]?" ||
		b.RequiredQueryStringParameters != "" || b.RPCBaseURL != nil || *b.ConnectionName != "Redis" {
		t.Fatalf("%+v", b)
	}
}
