// Package auth owns identity: it verifies the JWTs issued by the platform's
// auth service, turns a verified token into a user (upserting the row on first
// sight), and mints tokens for dev mode.
//
// partyline keeps no passwords. A Verifier checks a token's signature with one
// pinned algorithm (HS256 with a shared secret, or RS256 or EdDSA with a
// public key), requires exp, checks nbf and iat when present, checks iss and
// aud when configured, and requires a sub that is a valid user id. Every
// verification failure wraps partyline.ErrUnauthorized with a short reason
// and never the token.
//
// Callers:
//   - the REST and WebSocket entry points take the token (BearerToken reads
//     the Authorization header), call Authenticator.Authenticate, and put the
//     user in the request context with WithUser, where handlers find it with
//     UserFrom;
//   - cmd wires Options from flags and PARTYLINE_JWT_* variables, and in dev
//     mode loads DevSecret from the data dir for both the Verifier and the
//     Signer that backs POST /v1/dev/token and `partyline token`.
//
// Concurrency: Verifier, Signer and Authenticator are immutable after their
// constructor returns and are safe for concurrent use. Authenticator is as
// concurrent as the UserStore it wraps. Nothing in this package starts a
// goroutine or holds a lock. DevSecret is safe to call from several processes
// at once on the same data dir: they all end up with the same secret.
package auth
