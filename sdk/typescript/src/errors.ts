/** The error codes of protocol v1's error replies. */
export type ServerErrorCode =
  | "bad_request"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "conflict"
  | "rate_limited"
  | "too_large"
  | "limit_exceeded"
  | "unavailable"
  | "internal";

/**
 * Codes the client gives itself: a request that timed out, a connection lost
 * before the reply (for requests that are not safe to send twice), a client
 * that was closed, and bad input from the server.
 */
export type ClientErrorCode = "timeout" | "disconnected" | "closed" | "bad_frame" | "unknown_type" | "token";

export type ErrorCode = ServerErrorCode | ClientErrorCode;

/** The one error type of the SDK. `code` is the protocol's error code, or one of the client's own. */
export class PartylineError extends Error {
  readonly code: ErrorCode;
  /** The request type that failed, when a request failed. */
  readonly request: string | undefined;
  constructor(code: ErrorCode, message: string, request?: string) {
    super(message);
    this.name = "PartylineError";
    this.code = code;
    this.request = request;
  }
}
