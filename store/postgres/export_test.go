package postgres

import (
	"context"
	"fmt"
)

// Schema lists the columns and the indexes of the current schema, for
// storetest's migrate check.
func (db *DB) Schema(ctx context.Context) ([]string, error) {
	var out []string
	for _, q := range []string{
		`SELECT format('column %s.%s %s null=%s default=%s',
			table_name, column_name, data_type, is_nullable, coalesce(column_default, '-'))
		FROM information_schema.columns
		WHERE table_schema = current_schema()
		ORDER BY table_name, column_name`,
		`SELECT format('index %s: %s', indexname, indexdef)
		FROM pg_indexes
		WHERE schemaname = current_schema()
		ORDER BY indexname`,
	} {
		rows, err := db.pool.Query(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("postgres: schema: %w", err)
		}
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				rows.Close()
				return nil, fmt.Errorf("postgres: schema: %w", err)
			}
			out = append(out, line)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("postgres: schema: %w", err)
		}
	}
	return out, nil
}
