package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/partyline/partyline/feed"
)

// feedEval runs the ranking model's offline evaluation (feed.Evaluate) and
// prints model and popularity baseline side by side, or JSON with --json.
func feedEval(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("partyline feed-eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		o       feed.EvalOptions
		asJSON  bool
		seedArg uint64
	)
	fs.Uint64Var(&seedArg, "seed", 1, "seed of the synthetic world; the same seed gives the same figures")
	fs.IntVar(&o.Users, "users", 0, "viewers (0: 2000)")
	fs.IntVar(&o.Creators, "creators", 0, "creators (0: 200)")
	fs.IntVar(&o.Games, "games", 0, "games (0: 10)")
	fs.IntVar(&o.Clips, "clips", 0, "clips (0: 6000)")
	fs.IntVar(&o.Slates, "slates", 0, "feed pages shown (0: 30000)")
	fs.IntVar(&o.Days, "days", 0, "days simulated (0: 14)")
	fs.BoolVar(&asJSON, "json", false, `print {"model":{"auc","ndcg10"},"baseline":{...},"events","seed"}`)
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	o.Seed = seedArg
	start := time.Now()
	res, err := feed.Evaluate(o)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		return enc.Encode(struct {
			Model    feed.Scores `json:"model"`
			Baseline feed.Scores `json:"baseline"`
			Events   int         `json:"events"`
			Seed     uint64      `json:"seed"`
		}{res.Model, res.Baseline, res.Events, res.Seed})
	}
	fmt.Fprintf(stdout, "seed %d: %d events, the first %d (80%%) learned from; %d held-out pages ranked (%v)\n\n",
		res.Seed, res.Events, res.TrainEvents, res.TestSlates, time.Since(start).Round(time.Millisecond))
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tAUC\tNDCG@10\t")
	fmt.Fprintf(tw, "model (FTRL)\t%.4f\t%.4f\t\n", res.Model.AUC, res.Model.NDCG10)
	fmt.Fprintf(tw, "baseline (trending)\t%.4f\t%.4f\t\n", res.Baseline.AUC, res.Baseline.NDCG10)
	return tw.Flush()
}
