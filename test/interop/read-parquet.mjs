// Reads an l2g Parquet file with DuckDB, an independent Parquet reader, and
// prints what the Go interop test compares as one JSON object:
//   node read-parquet.mjs FILE.parquet IMAGE_ID
import { createHash } from "node:crypto";
import { DuckDBInstance } from "@duckdb/node-api";

const [file, imageId] = process.argv.slice(2);
if (!file || !imageId) {
  console.error("usage: node read-parquet.mjs FILE.parquet IMAGE_ID");
  process.exit(2);
}

const db = await DuckDBInstance.create(":memory:");
const con = await db.connect();
const rows = async (sql, params) => (await con.runAndReadAll(sql, params)).getRowObjects();
const text = (v) => (v instanceof Uint8Array ? Buffer.from(v).toString("utf8") : String(v));
const bytes = (blob) => Buffer.from(blob.bytes);

const columns = (await rows("DESCRIBE SELECT * FROM read_parquet($1)", [file])).map((r) => ({
  name: r.column_name,
  type: r.column_type,
}));
const [{ n }] = await rows("SELECT count(*)::INTEGER AS n FROM read_parquet($1)", [file]);

const picked = await rows(
  `SELECT height, width, mask, class_ids, bg_threshold, source_run_id, config_hash
     FROM read_parquet($1) WHERE image_id = $2`,
  [file, imageId],
);
if (picked.length !== 1) {
  console.error(`image ${imageId}: ${picked.length} rows`);
  process.exit(1);
}
const row = picked[0];
const mask = bytes(row.mask);

const kv = {};
for (const r of await rows("SELECT key, value FROM parquet_kv_metadata($1)", [file])) {
  kv[text(bytes(r.key))] = text(bytes(r.value));
}
const [{ created_by }] = await rows("SELECT created_by FROM parquet_file_metadata($1)", [file]);
const groups = (
  await rows(
    `SELECT row_group_id::INTEGER AS id, any_value(row_group_num_rows)::INTEGER AS rows
       FROM parquet_metadata($1) GROUP BY row_group_id ORDER BY row_group_id`,
    [file],
  )
).map((r) => r.rows);
const chunks = (
  await rows(
    `SELECT path_in_schema AS path, compression, encodings,
            stats_min_value IS NULL AND stats_max_value IS NULL AND stats_null_count IS NULL AS no_stats,
            dictionary_page_offset IS NULL AS no_dictionary
       FROM parquet_metadata($1) WHERE row_group_id = 0 ORDER BY column_id`,
    [file],
  )
).map((r) => ({ ...r, encodings: String(r.encodings) }));

console.log(
  JSON.stringify({
    columns,
    rows: n,
    row_groups: groups,
    created_by,
    kv,
    chunks,
    picked: {
      height: row.height,
      width: row.width,
      mask_len: mask.length,
      mask_sha256: createHash("sha256").update(mask).digest("hex"),
      class_ids: row.class_ids.items,
      bg_threshold: row.bg_threshold,
      source_run_id: row.source_run_id,
      config_hash: row.config_hash,
    },
  }),
);
