package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

func TestFeedEval(t *testing.T) {
	small := []string{"partyline", "feed-eval", "--seed", "7", "--users", "300", "--creators", "40", "--games", "6",
		"--clips", "800", "--slates", "2000"}
	var out bytes.Buffer
	if err := run(t.Context(), append(small, "--json"), func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatalf("feed-eval --json: %v", err)
	}
	var got struct {
		Model, Baseline struct{ AUC, NDCG10 float64 }
		Events          int
		Seed            uint64
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("decode %s: %v", out.Bytes(), err)
	}
	if got.Seed != 7 || got.Events == 0 || got.Model.AUC <= got.Baseline.AUC || got.Model.NDCG10 <= got.Baseline.NDCG10 {
		t.Errorf("feed-eval = %+v, want seed 7, events, and the model ahead on both", got)
	}
	out.Reset()
	if err := run(t.Context(), small, func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatalf("feed-eval: %v", err)
	}
	for _, want := range []string{"AUC", "NDCG@10", "model (FTRL)", "baseline (trending)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("feed-eval table lacks %q:\n%s", want, out.String())
		}
	}
	if err := run(t.Context(), []string{"partyline", "feed-eval", "--users", "-5"}, func(string) string { return "" }, io.Discard, io.Discard); err == nil {
		t.Errorf("feed-eval --users -5 succeeded")
	}
}
