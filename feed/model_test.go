package feed

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"errors"

	"github.com/partyline/partyline"
)

func TestModelLearns(t *testing.T) {
	m, err := newModel(ModelOptions{Bits: 12})
	if err != nil {
		t.Fatal(err)
	}
	good, bad := []uint64{hash("bias"), hash("g", "cs2")}, []uint64{hash("bias"), hash("g", "dota")}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		y := 0.0
		if rng.Float64() < 0.8 {
			y = 1
		}
		m.update(good, y)
		y = 0
		if rng.Float64() < 0.2 {
			y = 1
		}
		m.update(bad, y)
	}
	pg, pb := m.predict(good), m.predict(bad)
	if pg < 0.7 || pg > 0.9 || pb < 0.1 || pb > 0.3 {
		t.Errorf("after training at 0.8 and 0.2, predictions are %.3f and %.3f", pg, pb)
	}
}

func TestModelRoundTrip(t *testing.T) {
	m, _ := newModel(ModelOptions{Bits: 10})
	for i := range 100 {
		m.update([]uint64{uint64(i), hash("bias")}, float64(i%2))
	}
	blob, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	back, _ := newModel(ModelOptions{Bits: 10})
	if err := back.UnmarshalBinary(blob); err != nil {
		t.Fatalf("UnmarshalBinary: %v", err)
	}
	if diff := cmp.Diff(m.z, back.z); diff != "" {
		t.Errorf("z after a round trip (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(m.n, back.n); diff != "" {
		t.Errorf("n after a round trip (-want +got):\n%s", diff)
	}
	other, _ := newModel(ModelOptions{Bits: 11})
	for name, b := range map[string][]byte{
		"empty":      nil,
		"garbage":    []byte("not a model"),
		"truncated":  blob[:len(blob)/2],
		"other bits": func() []byte { b, _ := other.MarshalBinary(); return b }(),
	} {
		t.Run(name, func(t *testing.T) {
			fresh, _ := newModel(ModelOptions{Bits: 10})
			if err := fresh.UnmarshalBinary(b); !errors.Is(err, partyline.ErrInvalid) {
				t.Errorf("UnmarshalBinary(%s) = %v, want ErrInvalid", name, err)
			}
		})
	}
}

func TestDiversify(t *testing.T) {
	var cands []*candidate
	// a's clips score highest, then b's; c has one.
	for i, owner := range []string{"a", "a", "a", "a", "a", "b", "b", "c"} {
		cd := &candidate{score: 1 - float64(i)/10}
		cd.clip.ID, cd.clip.Owner = string(rune('0'+i)), owner
		cands = append(cands, cd)
	}
	var got []string
	for _, cd := range diversify(cands, 100) {
		got = append(got, cd.clip.Owner)
	}
	want := []string{"a", "a", "b", "a", "a", "b", "a", "c"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diversify (-want +got):\n%s", diff)
	}
	only := []*candidate{{score: 3}, {score: 2}, {score: 1}}
	for i, cd := range only {
		cd.clip.ID, cd.clip.Owner = string(rune('a'+i)), "solo"
	}
	if got := diversify(only, 100); len(got) != 2 {
		t.Errorf("diversify of one creator's three clips kept %d, want 2", len(got))
	}
}

func TestEvaluateBeatsBaseline(t *testing.T) {
	small := EvalOptions{Users: 300, Creators: 40, Games: 6, Clips: 800, Slates: 3000}
	for _, seed := range []uint64{1, 2, 3} {
		small.Seed = seed
		res, err := Evaluate(small)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("seed %d: %+v", seed, res)
		if res.TestSlates < 100 || res.TrainEvents < res.Events*3/4 {
			t.Fatalf("seed %d: only %d test pages, %d of %d events for training", seed, res.TestSlates, res.TrainEvents, res.Events)
		}
		if res.Model.AUC <= res.Baseline.AUC {
			t.Errorf("seed %d: model AUC %.4f does not beat the baseline's %.4f", seed, res.Model.AUC, res.Baseline.AUC)
		}
		if res.Model.NDCG10 <= res.Baseline.NDCG10 {
			t.Errorf("seed %d: model NDCG@10 %.4f does not beat the baseline's %.4f", seed, res.Model.NDCG10, res.Baseline.NDCG10)
		}
		again, _ := Evaluate(small)
		if again != res {
			t.Errorf("seed %d: a second run gave %+v, want the same", seed, again)
		}
	}
}

func TestEvalOptions(t *testing.T) {
	for _, o := range []EvalOptions{{Users: -1}, {Games: 2}, {Clips: 5, SlateSize: 20}} {
		if _, err := Evaluate(o); !errors.Is(err, partyline.ErrInvalid) {
			t.Errorf("Evaluate(%+v) = %v, want ErrInvalid", o, err)
		}
	}
}

// TestDiversifyMatchesGreedy checks diversify against the plain greedy
// rule it implements (take the best candidate that does not make a run of
// three), on random lists with few creators and tied scores.
func TestDiversifyMatchesGreedy(t *testing.T) {
	greedy := func(cands []*candidate, size int) []string {
		pending := slices.Clone(cands)
		slices.SortFunc(pending, func(a, b *candidate) int {
			if a.score != b.score {
				if a.score > b.score {
					return -1
				}
				return 1
			}
			return strings.Compare(a.clip.ID, b.clip.ID)
		})
		var out []*candidate
		for len(out) < size && len(pending) > 0 {
			pick := -1
			for i, cd := range pending {
				n := len(out)
				if n >= maxRun && out[n-1].clip.Owner == cd.clip.Owner && out[n-2].clip.Owner == cd.clip.Owner {
					continue
				}
				pick = i
				break
			}
			if pick < 0 {
				break
			}
			out = append(out, pending[pick])
			pending = slices.Delete(pending, pick, pick+1)
		}
		ids := []string{}
		for _, cd := range out {
			ids = append(ids, cd.clip.ID)
		}
		return ids
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 500 {
		n, owners, size := rng.IntN(60), 1+rng.IntN(4), 1+rng.IntN(70)
		var cands []*candidate
		for j := range n {
			cd := &candidate{score: float64(rng.IntN(10)) / 10}
			cd.clip.ID, cd.clip.Owner = fmt.Sprintf("c%02d", j), fmt.Sprintf("o%d", rng.IntN(owners))
			cands = append(cands, cd)
		}
		want := greedy(cands, size)
		got := []string{}
		for _, cd := range diversify(slices.Clone(cands), size) {
			got = append(got, cd.clip.ID)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("case %d: diversify differs from the greedy rule (-want +got):\n%s", i, diff)
		}
	}
}
