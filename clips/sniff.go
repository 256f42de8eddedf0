package clips

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash"
	"io"

	"github.com/partyline/partyline"
)

// The media types partyline accepts, as sniffed from the content.
const (
	TypeMP4  = "video/mp4"
	TypeWebM = "video/webm"
)

// sniffLen is how many leading bytes sniffing looks at: enough for an MP4
// ftyp box with its compatible brands and a WebM EBML header.
const sniffLen = 512

// mp4Brands are the ftyp brands of the MP4 family (ISO base media files
// that browsers play as video/mp4). QuickTime ("qt  ") and the rest are
// refused.
var mp4Brands = map[string]bool{
	"isom": true, "iso2": true, "iso3": true, "iso4": true, "iso5": true, "iso6": true, "iso7": true,
	"iso8": true, "iso9": true, "mp41": true, "mp42": true, "mp71": true, "avc1": true, "av01": true,
	"M4V ": true, "M4VH": true, "M4VP": true, "dash": true, "msdh": true, "msix": true, "mmp4": true,
	"MSNV": true, "XAVC": true, "f4v ": true, "3gp4": true, "3gp5": true, "3gp6": true, "3gp7": true,
}

// sniffVideo returns the media type of a file starting with head: TypeMP4,
// TypeWebM, or "" for anything else. It looks at structure, not at bytes
// anywhere: an MP4 starts with an ftyp box naming an MP4 brand, a WebM with
// an EBML header whose DocType is "webm".
func sniffVideo(head []byte) string {
	if len(head) >= 16 && string(head[4:8]) == "ftyp" {
		size := int(binary.BigEndian.Uint32(head[0:4]))
		if size < 16 || size > 4096 {
			return ""
		}
		end := min(size, len(head))
		if mp4Brands[string(head[8:12])] {
			return TypeMP4
		}
		for i := 16; i+4 <= end; i += 4 {
			if mp4Brands[string(head[i:i+4])] {
				return TypeMP4
			}
		}
		return ""
	}
	if len(head) >= 8 && bytes.Equal(head[:4], []byte{0x1A, 0x45, 0xDF, 0xA3}) {
		// The EBML header's children follow its own size; DocType is 0x4282.
		i := bytes.Index(head[4:min(len(head), 128)], []byte{0x42, 0x82})
		if i < 0 {
			return ""
		}
		rest := head[4+i+2:]
		if len(rest) < 1 {
			return ""
		}
		n, width := vint(rest)
		if width == 0 || n > 32 || len(rest) < width+int(n) {
			return ""
		}
		if string(rest[width:width+int(n)]) == "webm" {
			return TypeWebM
		}
	}
	return ""
}

// vint decodes an EBML variable-size integer, returning its value and
// width in bytes (0 when malformed).
func vint(b []byte) (uint64, int) {
	first := b[0]
	width := 1
	for mask := byte(0x80); mask != 0 && first&mask == 0; mask >>= 1 {
		width++
	}
	if width > 8 || len(b) < width {
		return 0, 0
	}
	v := uint64(first & (0xFF >> width))
	for _, c := range b[1:width] {
		v = v<<8 | uint64(c)
	}
	return v, width
}

// ingest is the reader every upload goes through, on its way to Blobs: it
// refuses content that is not MP4 or WebM before a byte is passed on, stops
// reading once the size cap is passed, and hashes what it passes.
type ingest struct {
	src     io.Reader // limited to max+1 bytes
	max     int64
	n       int64
	h       hash.Hash
	head    []byte // sniffed bytes not yet passed on
	sniffed bool
	ctype   string
	// want, when set, is the type the client declared; the content must be
	// of that type.
	want string
	// err is the first failure of the upload itself (not of the source's
	// transport): what the client is told.
	err error
}

func newIngest(src io.Reader, max int64, declared string) *ingest {
	return &ingest{src: io.LimitReader(src, max+1), max: max, h: sha256.New(), want: declared}
}

// errTruncated is the cause when the body ends before its declared length.
var errTruncated = partyline.Errorf(partyline.ErrInvalid, "the upload ended before its declared length")

func (g *ingest) Read(p []byte) (int, error) {
	n, err := g.read(p)
	if err != nil && err != io.EOF && g.err == nil {
		g.err = err
	}
	return n, err
}

func (g *ingest) read(p []byte) (int, error) {
	if !g.sniffed {
		g.sniffed = true
		head := make([]byte, sniffLen)
		n := 0
		for n < len(head) {
			m, err := g.src.Read(head[n:])
			n += m
			if err == io.EOF {
				break
			}
			if err != nil {
				return 0, readErr(err)
			}
		}
		g.head = head[:n]
		if err := g.count(n); err != nil {
			return 0, err
		}
		g.ctype = sniffVideo(g.head)
		switch {
		case n == 0:
			return 0, partyline.Errorf(partyline.ErrInvalid, "the upload is empty")
		case g.ctype == "":
			return 0, partyline.Errorf(partyline.ErrUnsupported, "the content is not an MP4 or WebM video")
		case g.want != "" && g.want != g.ctype:
			return 0, partyline.Errorf(partyline.ErrUnsupported, "the content is %s, not the declared %s", g.ctype, g.want)
		}
	}
	if len(g.head) > 0 {
		n := copy(p, g.head)
		g.h.Write(p[:n])
		g.head = g.head[n:]
		return n, nil
	}
	n, err := g.src.Read(p)
	if n > 0 {
		if cerr := g.count(n); cerr != nil {
			return 0, cerr
		}
		g.h.Write(p[:n])
	}
	if err != nil && err != io.EOF {
		return n, readErr(err)
	}
	return n, err
}

func (g *ingest) count(n int) error {
	g.n += int64(n)
	if g.n > g.max {
		return partyline.Errorf(partyline.ErrTooLarge, "the upload is over the limit of %d bytes", g.max)
	}
	return nil
}

// readErr turns a failure to read the body (the client went away, or sent
// less than its Content-Length) into the upload's error.
func readErr(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return errTruncated
	}
	return partyline.Errorf(partyline.ErrInvalid, "the upload was interrupted: %v", err)
}

// sum returns the hex SHA-256 of everything passed on.
func (g *ingest) sum() string { return hex.EncodeToString(g.h.Sum(nil)) }
