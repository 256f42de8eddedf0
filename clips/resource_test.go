package clips_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/partyline/partyline/internal/server/servertest"
)

// TestClipKeys pins the clip object's keys on the wire. The other tests
// decode clips into clips.Resource, so this is the test that fails when a
// field of it is renamed, added or dropped. Unknown fields are null, not
// left out, so a clip with no media yet has every key too.
func TestClipKeys(t *testing.T) {
	s := newStack(t, stackOpts{})
	c := s.create("ada", "public")
	r := s.srv.Want(t, http.StatusOK, servertest.Request{Method: "GET", Path: "/v1/clips/" + c.ID, Token: "ada"})
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(r.Body, &obj); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
	var got []string
	for k := range obj {
		got = append(got, k)
	}
	slices.Sort(got)
	want := []string{
		"comment_count", "content_type", "created_at", "duration_ms", "fail_reason", "game",
		"height", "id", "like_count", "media_url", "owner", "sha256", "size_bytes", "status",
		"tags", "thumbnail_url", "title", "updated_at", "upload_url", "view_count", "visibility", "width",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("clip keys (-want +got):\n%s", diff)
	}
}
