// Package httpapi serves the HTTP management API of Azure Durable Functions
// over a *client.Client, wire-compatible with the Durable Functions extension
// 2.13 (with the stricter 3.x status codes where clients accept both), so
// existing Durable Functions clients (the npm durable-functions package,
// curl scripts, dashboards) work unchanged.
//
// Routes, relative to the webhook base /runtime/webhooks/durabletask (also
// served under the local-RPC base /durabletask):
//
//	POST   /orchestrators/{functionName}[/{instanceId}]   start (wait mode: ?timeout=s&pollingInterval=s)
//	GET    /instances                                      list (filters, x-ms-continuation-token)
//	DELETE /instances                                      purge by filter (createdTimeFrom required)
//	GET    /instances/{id}                                 status
//	DELETE /instances/{id}                                 purge one
//	POST   /instances/{id}/raiseEvent/{eventName}          raise an event (JSON body)
//	POST   /instances/{id}/terminate|suspend|resume|rewind ?reason=…
//	POST   /instances/{id}/restart                         ?restartWithNewInstanceId=true|false
//	GET    /instances/{id}/managementPayload               the HttpManagementPayload (extension)
//	GET    /binding                                        the durableClient binding JSON (extension)
//
// and the HTTP-trigger starters of the Durable Functions samples, at the root
// and under /api:
//
//	POST /orchestrators/{functionName}        202 check-status response
//	POST /orchestrators/{functionName}/wait   ?timeout=s&retryInterval=s: 200 with the output, or 202
//
// Every request needs the system key (the code query parameter or the
// x-functions-key header) unless auth is disabled, which is allowed only on
// loopback. docs/http-api.md documents the API for users, with every
// deliberate deviation from Durable Functions.
package httpapi
