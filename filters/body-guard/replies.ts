/**
 * The answers body-guard gives itself, as JSON:
 *
 *   413 {"error":"payload_too_large","limit":1024}
 *   400 {"error":"invalid_json","message":"expected ',' or '}' in an object","position":17,"line":2,"column":5}
 */
import { Header, HttpContext, JsonError, quoteJsonString } from "../sdk/index";

const JSON_TYPE: Header[] = [new Header("content-type", "application/json")];

export function payloadTooLarge(stream: HttpContext, limit: i64): void {
  const body = "{\"error\":\"payload_too_large\",\"limit\":" + limit.toString() + "}";
  stream.sendHttpResponseString(413, JSON_TYPE, body, "body_guard_payload_too_large");
}

/** `position` is the byte offset of the first error in the body; line and column count from 1. */
export function invalidJson(stream: HttpContext, error: JsonError): void {
  const body = "{\"error\":\"invalid_json\",\"message\":" + quoteJsonString(error.message) + ",\"position\":" + error.offset.toString()
    + ",\"line\":" + error.line.toString() + ",\"column\":" + error.column.toString() + "}";
  stream.sendHttpResponseString(400, JSON_TYPE, body, "body_guard_invalid_json");
}
