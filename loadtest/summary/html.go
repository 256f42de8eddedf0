package summary

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/partyline/partyline/loadtest/metrics"
)

//go:embed report.html.tmpl
var reportSource string

var reportTmpl = template.Must(template.New("report").Parse(reportSource))

type htmlData struct {
	Title      string
	Header     []string
	Duration   string
	Failed     bool
	Thresholds []htmlThreshold
	Checks     []htmlCheck
	Sections   []htmlSection
	Charts     []chart
	Series     seriesData
}

type htmlThreshold struct {
	Key, Source, Observed string
	Pass                  bool
}

type htmlCheck struct {
	Name          string
	Passes, Fails int64
	Pct           string
}

type htmlSection struct {
	Title string
	Rows  []htmlRow
}

type htmlRow struct {
	Name  string
	Sub   bool
	Type  string
	Cells []string
	// Status is "pass" or "fail" when thresholds are on the row.
	Status string
}

// HTML writes the --report file: a self-contained page with the summary,
// the thresholds, the checks and the time-series charts. Everything shown
// is escaped by html/template; the page loads nothing from elsewhere.
func HTML(w io.Writer, in Input) error {
	md := build(in)
	d := htmlData{
		Title:    in.Title,
		Header:   scenarioHeader(in.Scenarios),
		Duration: in.Elapsed.Round(100 * time.Millisecond).String(),
		Series:   buildSeries(in.Registry),
	}
	if d.Title == "" {
		d.Title = "partyline load test"
	}
	d.Charts = charts(d.Series)
	for _, rs := range md.ByKey {
		for _, r := range rs {
			d.Failed = d.Failed || !r.Pass
			d.Thresholds = append(d.Thresholds, htmlThreshold{Key: r.Key, Source: r.Source, Observed: observed(r), Pass: r.Pass})
		}
	}
	for _, c := range md.Checks {
		pct := math.Floor(float64(c.Passes) / float64(c.Passes+c.Fails) * 100)
		d.Checks = append(d.Checks, htmlCheck{Name: c.Name, Passes: c.Passes, Fails: c.Fails, Pct: strconv.FormatFloat(pct, 'f', -1, 64) + "%"})
	}
	var secs []section
	if md.ChecksTotal != nil {
		secs = append(secs, section{Title: "CHECKS", Entries: []entry{*md.ChecksTotal}})
	}
	for _, s := range append(secs, md.Sections...) {
		hs := htmlSection{Title: s.Title}
		for _, e := range s.Entries {
			row := htmlRow{Name: e.Key, Type: typeLabel(e.Stats), Cells: cells(e)}
			if e.Tags != nil {
				row.Name, row.Sub = tagLabel(e.Tags), true
			}
			if len(e.Results) > 0 {
				row.Status = "pass"
				for _, r := range e.Results {
					if !r.Pass {
						row.Status = "fail"
					}
				}
			}
			hs.Rows = append(hs.Rows, row)
		}
		d.Sections = append(d.Sections, hs)
	}
	var b bytes.Buffer
	if err := reportTmpl.Execute(&b, d); err != nil {
		return fmt.Errorf("summary: render report: %w", err)
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("summary: write report: %w", err)
	}
	return nil
}

func typeLabel(st metrics.Stats) string {
	if st.IsTime {
		return "trend (time)"
	}
	return st.Type.String()
}
