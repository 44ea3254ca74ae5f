// A webhook receiver for the tests: verifies every request with the `standardwebhooks` npm package (a library
// cdvault did not write), as a tool's receiver would, and logs what it accepted and refused as JSON lines.
//   node webhook-receiver.mjs DIR HOST PORT
// DIR/secrets: the endpoint's secrets (`whsec_...`), one per line, read again on every request (any one verifying
//   is enough, as during a rotation). DIR/status: when present, every request is answered with that status without
//   being verified (307 redirects to 127.0.0.1:9). DIR/delay_ms: when present, each answer waits that long.
// DIR/received.jsonl: one line per verified request {id, timestamp, signatures, duplicate, payload, headers, body}.
// DIR/refused.jsonl: one line per refused request {id, error}. DIR/answered.jsonl: one line per status answer
// {id, timestamp, status}. DIR/arrived.jsonl: one line per request as it arrives, before any delay {id}.
// Prints {"port": N} once listening.
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(path.join(process.env.CDVAULT_NODE_MODULES, "noop.js"));
const { Webhook } = require("standardwebhooks");

const [dir, host, port] = process.argv.slice(2);
const file = (name) => path.join(dir, name);
const optional = (name) => (fs.existsSync(file(name)) ? fs.readFileSync(file(name), "utf8").trim() : null);
const append = (name, value) => fs.appendFileSync(file(name), JSON.stringify(value) + "\n");

// A restarted receiver still knows the ids it accepted: a redelivery is a duplicate, as a real receiver keeps them.
const seen = new Set(
  (optional("received.jsonl") ?? "")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line).id),
);

const server = http.createServer((req, res) => {
  append("arrived.jsonl", { id: req.headers["webhook-id"] ?? null });
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8");
    const answer = () => {
      const status = optional("status");
      if (status) {
        append("answered.jsonl", {
          id: req.headers["webhook-id"],
          timestamp: Number(req.headers["webhook-timestamp"]),
          status: Number(status),
        });
        res.writeHead(Number(status), Number(status) === 307 ? { location: "http://127.0.0.1:9/" } : {});
        return res.end();
      }
      const secrets = (optional("secrets") ?? "").split("\n").filter(Boolean);
      let payload = null;
      let error = "no secret";
      for (const secret of secrets) {
        try {
          payload = new Webhook(secret).verify(body, req.headers);
          break;
        } catch (e) {
          error = e.message;
        }
      }
      if (payload === null) {
        append("refused.jsonl", { id: req.headers["webhook-id"] ?? null, error });
        res.writeHead(400);
        return res.end(error);
      }
      const id = req.headers["webhook-id"];
      const duplicate = seen.has(id);
      seen.add(id);
      const headers = {
        "webhook-id": id,
        "webhook-timestamp": req.headers["webhook-timestamp"],
        "webhook-signature": req.headers["webhook-signature"],
      };
      append("received.jsonl", {
        id,
        timestamp: Number(req.headers["webhook-timestamp"]),
        signatures: req.headers["webhook-signature"].split(" ").length,
        duplicate,
        payload,
        headers,
        body,
      });
      res.writeHead(204);
      res.end();
    };
    const delay = Number(optional("delay_ms") ?? 0);
    if (delay > 0) setTimeout(answer, delay);
    else answer();
  });
});

server.listen(Number(port), host, () => console.log(JSON.stringify({ port: server.address().port })));
