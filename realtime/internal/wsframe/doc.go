// Package wsframe writes WebSocket data frames underneath
// github.com/coder/websocket, so that a fan-out costs one syscall per
// frame and an idle connection holds no write buffer. realtime owns the
// connections and uses it unless Options.DisableWSFastPath is set, in
// which case the library writes everything.
//
// It owns three pieces that know nothing of the library's types:
//
//   - ResponseWriter, passed to websocket.Accept, hands the library the
//     hijacked connection wrapped as a Conn, with a 1 KiB read buffer and a
//     128-byte write buffer instead of net/http's 4 KiB ones;
//   - Conn frames text (WriteText, TryWriteText, FinishText) and orders
//     those frames with the library's own writes under one mutex;
//   - NBWrite writes to the socket without waiting (unix only; elsewhere
//     every write reports ErrWouldBlock and the caller blocks instead).
//
// # What it relies on in coder/websocket
//
// Checked against v1.8.15 (go.mod). Re-check each point on every upgrade;
// TestResponseWriterUnderTheLibrary and the realtime suites, run with the
// fast path on and off (PARTYLINE_TEST_FAST_PATHS=off), catch most breaks.
//
//  1. Accept finds the http.Hijacker by a type switch on the
//     ResponseWriter (following Unwrap), calls Hijack once after writing
//     the 101 answer's header, and then uses the returned net.Conn and
//     bufio.ReadWriter for all its I/O: it reads through the Reader
//     (Reset over what is buffered, which keeps its size) and writes
//     through the Writer.
//  2. The caller never writes data messages through the library, so the
//     library writes only control frames (ping, pong, close). Each is at
//     most 2+125 bytes, fits the 128-byte Writer, and is flushed at once
//     as one Write to Conn: a frame is never split across Writes and a
//     Write starts on a frame boundary. Conn reads the opcode from the
//     first byte of each Write to learn that a close frame went out.
//  3. Compression is off (CompressionDisabled), so no RSV bit or
//     extension state has to match between the library's frames and these.
//  4. Frames here are final, unmasked text frames with the minimal length
//     encoding (RFC 6455 section 5.2), as the library writes its own. As
//     the library writes no data frames (2), none can fall between the
//     fragments of one of its messages.
//
// # Concurrency
//
// Conn.mu orders every write to the socket and is held across a frame
// written in parts (TryWriteText's held result until FinishText). It is
// taken by nothing else. An NBWrite belongs to one goroutine at a time.
// The package starts no goroutines.
package wsframe
