// Starts GraphiQL on this page's own origin: queries to /graphql, subscriptions to /graphql/ws (ws: or wss: as
// the page). A file of its own rather than an inline script, so the page's CSP needs no 'unsafe-inline'.
(function () {
  "use strict";
  var http = new URL("/graphql", window.location.origin);
  var ws = new URL("/graphql/ws", window.location.origin);
  ws.protocol = ws.protocol === "https:" ? "wss:" : "ws:";
  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {
      fetcher: GraphiQL.createFetcher({ url: http.toString(), subscriptionUrl: ws.toString() }),
      defaultEditorToolsVisibility: true,
    })
  );
})();
