package summary

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/partyline/partyline/loadtest/metrics"
)

// Text writes the end-of-test summary in k6's layout.
func Text(w io.Writer, in Input) error {
	md := build(in)
	var b bytes.Buffer

	b.WriteString("\n")
	for i, l := range scenarioHeader(in.Scenarios) {
		if i == 0 {
			fmt.Fprintf(&b, "  %s\n", l)
		} else {
			fmt.Fprintf(&b, "             %s\n", l)
		}
	}
	fmt.Fprintf(&b, "   duration: %v\n", in.Elapsed.Round(100*time.Millisecond))

	if len(md.ByKey) > 0 {
		b.WriteString("\n\n  █ THRESHOLDS\n")
		for _, rs := range md.ByKey {
			fmt.Fprintf(&b, "\n    %s\n", rs[0].Key)
			for _, r := range rs {
				fmt.Fprintf(&b, "    %s '%s' %s\n", mark(r.Pass), r.Source, observed(r))
			}
		}
	}

	b.WriteString("\n\n  █ TOTAL RESULTS\n")
	if len(md.Checks) > 0 {
		b.WriteString("\n")
		for _, c := range md.Checks {
			fmt.Fprintf(&b, "    %s %s\n", mark(c.Fails == 0), c.Name)
			if c.Fails > 0 {
				// Rounded down, so that a failing check never shows 100%.
				pct := math.Floor(float64(c.Passes) / float64(c.Passes+c.Fails) * 100)
				fmt.Fprintf(&b, "      ↳  %v%% — ✓ %d / ✗ %d\n", pct, c.Passes, c.Fails)
			}
		}
	}

	// Every row is laid out first, so that the dots line up across
	// sections and the values line up in columns: trends in theirs, the
	// other types in theirs, as k6 does.
	type row struct {
		name  string
		trend bool
		cells []string
	}
	var blocks [][]row
	var titles []string
	if md.ChecksTotal != nil {
		blocks = append(blocks, []row{{name: checksMetric, cells: cells(*md.ChecksTotal)}})
		titles = append(titles, "")
	}
	for _, s := range md.Sections {
		var rows []row
		for _, e := range s.Entries {
			name := e.Key
			if e.Tags != nil {
				name = "  " + tagLabel(e.Tags)
			}
			rows = append(rows, row{name: name, trend: e.Stats.Type == metrics.Trend, cells: cells(e)})
		}
		blocks = append(blocks, rows)
		titles = append(titles, s.Title)
	}
	nameWidth := 0
	colWidth := map[bool][]int{}
	for _, rows := range blocks {
		for _, r := range rows {
			nameWidth = max(nameWidth, width(r.name))
			for i, c := range r.cells {
				if i >= len(colWidth[r.trend]) {
					colWidth[r.trend] = append(colWidth[r.trend], 0)
				}
				colWidth[r.trend][i] = max(colWidth[r.trend][i], width(c))
			}
		}
	}
	nameWidth += 3
	for i, rows := range blocks {
		b.WriteString("\n")
		if titles[i] != "" {
			fmt.Fprintf(&b, "    %s\n", titles[i])
		}
		for _, r := range rows {
			b.WriteString("    ")
			b.WriteString(r.name)
			b.WriteString(strings.Repeat(".", nameWidth-width(r.name)))
			b.WriteString(":")
			for j, c := range r.cells {
				b.WriteString(" ")
				b.WriteString(c)
				if j < len(r.cells)-1 {
					b.WriteString(strings.Repeat(" ", colWidth[r.trend][j]-width(c)))
				}
			}
			b.WriteString("\n")
		}
	}

	var crossed []string
	for _, rs := range md.ByKey {
		for _, r := range rs {
			if !r.Pass {
				crossed = append(crossed, "'"+r.Key+"'")
				break
			}
		}
	}
	if len(crossed) > 0 {
		fmt.Fprintf(&b, "\n  ✗ thresholds on metrics %s have been crossed\n", strings.Join(crossed, ", "))
	}
	b.WriteString("\n")
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("summary: write text: %w", err)
	}
	return nil
}

func mark(ok bool) string {
	if ok {
		return "✓"
	}
	return "✗"
}

func width(s string) int { return utf8.RuneCountInString(s) }
