package sqlite

import (
	"context"
	"fmt"
)

// Schema lists every table, index and trigger as type, name, table and the
// SQL that made it, for storetest's migrate check.
func (db *DB) Schema(ctx context.Context) ([]string, error) {
	rows, err := db.r.QueryContext(ctx,
		`SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: schema: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var typ, name, table, sql string
		if err := rows.Scan(&typ, &name, &table, &sql); err != nil {
			return nil, fmt.Errorf("sqlite: schema: %w", err)
		}
		out = append(out, fmt.Sprintf("%s %s on %s: %s", typ, name, table, sql))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: schema: %w", err)
	}
	return out, nil
}
