// Hook-level test helpers (@pgbun/plugin-sdk/testing): fake clients and servers, a PluginApi over fresh hooks, and
// one message run through its hook as the core runs it, all without PostgreSQL or sockets.
export { answerInternal, fakeClient, fakeServer, FakeClient, FakeServer, type FakeClientOptions, type FakeServerOptions, type InternalCall } from "./testing/fakes.ts";
export { applyPlugin, settle, testApi, type LogLine, type OpenedServer, type TestApi, type TestApiOptions } from "./testing/api.ts";
export { runClientMessage, runClientMessages, runServerMessage, runServerMessages, splitMessages, type MessageRun } from "./testing/run.ts";
