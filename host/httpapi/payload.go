package httpapi

import (
	"net/url"
	"strings"

	"github.com/durablewasm/durablewasm/abi"
)

// WebhookPath is the base path of the management API, as in Durable
// Functions 2.x and later.
const WebhookPath = "/runtime/webhooks/durabletask"

// RPCPath is the base path of the local-RPC routes (Durable Functions' local
// RPC listener); same routes as WebhookPath.
const RPCPath = "/durabletask"

// HTTPManagementPayload holds the management URLs of one instance, with the
// JSON names and key order of Durable Functions' HttpManagementPayload; it is
// the ABI's type, which guests receive.
type HTTPManagementPayload = abi.ManagementPayload

// CheckStatusPayload is the body of the 202 check-status response: the
// management URLs without rewindPostUri, in Durable Functions' order.
type CheckStatusPayload struct {
	ID                    string `json:"id"`
	StatusQueryGetURI     string `json:"statusQueryGetUri"`
	SendEventPostURI      string `json:"sendEventPostUri"`
	TerminatePostURI      string `json:"terminatePostUri"`
	PurgeHistoryDeleteURI string `json:"purgeHistoryDeleteUri"`
	RestartPostURI        string `json:"restartPostUri"`
	SuspendPostURI        string `json:"suspendPostUri"`
	ResumePostURI         string `json:"resumePostUri"`
}

// checkStatus returns the check-status subset of p.
func checkStatus(p HTTPManagementPayload) CheckStatusPayload {
	return CheckStatusPayload{ID: p.ID, StatusQueryGetURI: p.StatusQueryGetURI, SendEventPostURI: p.SendEventPostURI,
		TerminatePostURI: p.TerminatePostURI, PurgeHistoryDeleteURI: p.PurgeHistoryDeleteURI,
		RestartPostURI: p.RestartPostURI, SuspendPostURI: p.SuspendPostURI, ResumePostURI: p.ResumePostURI}
}

// ManagementPayload returns the management URLs of instance id, as Durable
// Functions builds them. baseURL is the webhook base without a trailing
// slash, e.g. "http://localhost:7071/runtime/webhooks/durabletask"; hub and
// connection are always put in the query (taskHub=…&connection=…); code,
// when not empty, is appended as &code=…. The id is percent-encoded as one
// path segment (a space is %20). The URLs keep the literal placeholders
// {eventName} and {text}. Example statusQueryGetUri:
//
//	http://localhost:7071/runtime/webhooks/durabletask/instances/abc?taskHub=DurableFunctionsHub&connection=Redis
func ManagementPayload(baseURL, hub, connection, code, id string) HTTPManagementPayload {
	prefix := strings.TrimRight(baseURL, "/") + "/instances/" + escapeSegment(id)
	q := "taskHub=" + url.QueryEscape(hub) + "&connection=" + url.QueryEscape(connection)
	if code != "" {
		q += "&code=" + url.QueryEscape(code)
	}
	return HTTPManagementPayload{
		ID:                    id,
		StatusQueryGetURI:     prefix + "?" + q,
		SendEventPostURI:      prefix + "/raiseEvent/{eventName}?" + q,
		TerminatePostURI:      prefix + "/terminate?reason={text}&" + q,
		RewindPostURI:         prefix + "/rewind?reason={text}&" + q,
		PurgeHistoryDeleteURI: prefix + "?" + q,
		RestartPostURI:        prefix + "/restart?" + q,
		SuspendPostURI:        prefix + "/suspend?reason={text}&" + q,
		ResumePostURI:         prefix + "/resume?reason={text}&" + q,
	}
}

// escapeSegment percent-encodes s as one path segment, as .NET's
// Uri.EscapeDataString does: everything but letters, digits and -_.~ is
// escaped (UTF-8 bytes as %XX), a space as %20. This escapes more than
// url.PathEscape (also :@&=+$,;), which is as valid in a path and survives
// clients that treat those characters specially. The segments "." and "..",
// which URL parsers resolve away, are written %2E and %2E%2E (ids created
// before host.ValidateInstanceID refused them may still exist; curl and Go
// keep %2E, though browsers resolve it too).
func escapeSegment(s string) string {
	if s == "." || s == ".." {
		return strings.Repeat("%2E", len(s))
	}
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// ClientBinding is the durableClient binding JSON that Durable Functions
// gives out-of-process SDKs (JS, Python), in its key order.
type ClientBinding struct {
	TaskHubName    string  `json:"taskHubName"`
	ConnectionName *string `json:"connectionName"`
	CreationURLs   struct {
		CreateNewInstancePostURI          string `json:"createNewInstancePostUri"`
		CreateAndWaitOnNewInstancePostURI string `json:"createAndWaitOnNewInstancePostUri"`
	} `json:"creationUrls"`
	ManagementURLs                HTTPManagementPayload `json:"managementUrls"`
	BaseURL                       string                `json:"baseUrl"`
	RequiredQueryStringParameters string                `json:"requiredQueryStringParameters"`
	RPCBaseURL                    *string               `json:"rpcBaseUrl"`
}

// NewClientBinding builds the binding for baseURL (the webhook base, e.g.
// "http://localhost:7071/runtime/webhooks/durabletask"). connectionName
// nil reports the default connection (null), connection is the name used
// in the URLs; code, when not empty, is the required query parameter;
// rpcBaseURL nil means the local-RPC routes are not offered (the SDK then
// uses the webhook URLs). managementUrls use the placeholder id INSTANCEID.
func NewClientBinding(baseURL, hub string, connectionName *string, connection, code string, rpcBaseURL *string) ClientBinding {
	baseURL = strings.TrimRight(baseURL, "/")
	var b ClientBinding
	b.TaskHubName = hub
	b.ConnectionName = connectionName
	required := ""
	if code != "" {
		required = "code=" + url.QueryEscape(code)
	}
	amp := ""
	if required != "" {
		amp = "&"
	}
	b.CreationURLs.CreateNewInstancePostURI = baseURL + "/orchestrators/{functionName}[/{instanceId}]?" + required
	b.CreationURLs.CreateAndWaitOnNewInstancePostURI = baseURL + "/orchestrators/{functionName}[/{instanceId}]?timeout={timeoutInSeconds}&pollingInterval={intervalInSeconds}" + amp + required
	b.ManagementURLs = ManagementPayload(baseURL, hub, connection, code, "INSTANCEID")
	b.BaseURL = baseURL
	b.RequiredQueryStringParameters = required
	b.RPCBaseURL = rpcBaseURL
	return b
}
