package pseudolabel

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/l2g/l2g/internal/labelio"
	"github.com/l2g/l2g/schemas"
)

// interopDir finds test/interop from this package's directory.
func interopDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "test", "interop")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

type duckReport struct {
	Columns   []struct{ Name, Type string }
	Rows      int
	RowGroups []int             `json:"row_groups"`
	CreatedBy string            `json:"created_by"`
	KV        map[string]string `json:"kv"`
	Chunks    []struct {
		Path         string `json:"path"`
		Compression  string `json:"compression"`
		Encodings    string `json:"encodings"`
		NoStats      bool   `json:"no_stats"`
		NoDictionary bool   `json:"no_dictionary"`
	}
	Picked struct {
		Height, Width int
		MaskLen       int     `json:"mask_len"`
		MaskSHA256    string  `json:"mask_sha256"`
		ClassIDs      []int   `json:"class_ids"`
		BgThreshold   float64 `json:"bg_threshold"`
		SourceRunID   string  `json:"source_run_id"`
		ConfigHash    string  `json:"config_hash"`
	}
}

// TestParquetReadByDuckDB reads the pseudo-label Parquet with DuckDB (npm
// @duckdb/node-api in test/interop, installed by `scripts/setup.sh --test`,
// which `make test` runs) and checks the
// schema, row count, row groups, a mask's SHA-256 and the metadata against
// what Go wrote. L2G_SKIP_INTEROP=1 skips it explicitly.
func TestParquetReadByDuckDB(t *testing.T) {
	if os.Getenv("L2G_SKIP_INTEROP") == "1" {
		t.Skip("L2G_SKIP_INTEROP=1: DuckDB interoperability not checked")
	}
	dir := interopDir(t)
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not installed: run scripts/setup.sh --test (or make test), or set L2G_SKIP_INTEROP=1 to skip the DuckDB check")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@duckdb", "node-api")); err != nil {
		t.Fatalf("%s/node_modules is missing: run scripts/setup.sh --test (or make test), or set L2G_SKIP_INTEROP=1 to skip the DuckDB check", dir)
	}

	ctx := context.Background()
	tmp := t.TempDir()
	cams := writeCAMs(t, tmp, schemas.RowGroupRows+6, 7, 9)
	cfg := DefaultConfig()
	cfg.WritePNG = false
	out, err := Run(ctx, cfg, Inputs{CAMs: cams, OutDir: tmp, RunID: "run-interop"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const id = "img066" // in the second row group
	lr, err := labelio.Open(out.Parquet)
	if err != nil {
		t.Fatal(err)
	}
	want, err := lr.Get(ctx, id)
	lr.Close()
	if err != nil {
		t.Fatal(err)
	}

	cmd := exec.CommandContext(ctx, node, "read-parquet.mjs", out.Parquet, id)
	cmd.Dir = dir
	b, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("node read-parquet.mjs: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	t.Logf("DuckDB report: %s", b)
	var got duckReport
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("node output %q: %v", b, err)
	}

	wantCols := []string{
		"image_id VARCHAR", "split VARCHAR", "height INTEGER", "width INTEGER", "mask BLOB",
		"class_ids INTEGER[]", "class_fractions FLOAT[]", "ignore_fraction FLOAT", "bg_threshold DOUBLE",
		"source_run_id VARCHAR", "config_hash VARCHAR",
	}
	if len(got.Columns) != len(wantCols) {
		t.Fatalf("DuckDB sees columns %v", got.Columns)
	}
	for i, c := range got.Columns {
		if s := c.Name + " " + c.Type; s != wantCols[i] {
			t.Errorf("column %d: DuckDB %q, want %q", i, s, wantCols[i])
		}
	}
	if got.Rows != out.Images || fmt.Sprint(got.RowGroups) != fmt.Sprint([]int{schemas.RowGroupRows, 6}) {
		t.Errorf("DuckDB: %d rows in row groups %v, Go wrote %d", got.Rows, got.RowGroups, out.Images)
	}
	sum := sha256.Sum256(want.Mask)
	p := got.Picked
	if p.MaskSHA256 != hex.EncodeToString(sum[:]) || p.MaskLen != 63 || p.Height != 7 || p.Width != 9 {
		t.Errorf("mask of %s: DuckDB %d bytes sha256 %s (%dx%d), Go sha256 %x", id, p.MaskLen, p.MaskSHA256, p.Width, p.Height, sum)
	}
	if fmt.Sprint(p.ClassIDs) != fmt.Sprint(want.ClassIDs) || p.BgThreshold != 0.25 || p.SourceRunID != "run-interop" || p.ConfigHash != cfg.Hash() {
		t.Errorf("row %s: DuckDB %+v, Go %v", id, p, want.ClassIDs)
	}
	meta := labelio.Meta([]string{"a", "b", "c", "d"})
	s, err := schemas.PseudoLabel(meta)
	if err != nil {
		t.Fatal(err)
	}
	md := s.Metadata()
	for i, k := range md.Keys() {
		if got.KV[k] != md.Values()[i] {
			t.Errorf("metadata %s: DuckDB %q, Go %q", k, got.KV[k], md.Values()[i])
		}
	}
	if _, ok := got.KV["ARROW:schema"]; !ok {
		t.Error("no ARROW:schema in the key-value metadata")
	}
	if got.CreatedBy != schemas.CreatedBy {
		t.Errorf("created_by %q, want %q", got.CreatedBy, schemas.CreatedBy)
	}
	for _, c := range got.Chunks {
		if c.Compression != "ZSTD" {
			t.Errorf("column %s compressed with %s", c.Path, c.Compression)
		}
		if c.Path == schemas.ColMask && (!c.NoStats || !c.NoDictionary) {
			t.Errorf("mask column: statistics off %v, dictionary off %v (encodings %s)", c.NoStats, c.NoDictionary, c.Encodings)
		}
	}
}
