//! The reference semantics of a source's removing rules, kept as the oracle of the
//! differential tests: the straightforward formulation gtmos ran before [`super::ingest`].
//! Rules nest, one stage per set rule; each stage carries every column and labels a row with
//! the first rule it fails (`COALESCE` keeps an earlier label); a set rule is a window over the
//! whole row, partitioned by its key and by whether the row is still in the flow.

use crate::contracts::Compiled;
use crate::engine::{RAW, ident, quote};
use crate::error::Result;
use crate::project::data_tests::{SqlContext, TestSpec};
use crate::schema::TableSchema;

/// The ingest query: every raw row with `_rule`, the index (in `removing`) of the first test it
/// fails, or null. `relation` names the table a relationships test reads.
pub fn reference_ingest_sql(
    t: &TableSchema,
    removing: &[&TestSpec],
    relation: &dyn Fn(&str) -> String,
    render: &dyn Fn(&str) -> Result<String>,
) -> Result<Compiled> {
    let cols: Vec<String> = t.columns.iter().map(|c| ident(&c.name)).collect();
    let list = |alias: &str| {
        cols.iter()
            .map(|c| format!("{alias}.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let raw_relation = format!("{RAW}.{}", ident(&t.name));
    let mut sql = format!(
        "SELECT {}, CAST(NULL AS VARCHAR) AS _rule FROM {RAW}.{} t",
        list("t"),
        ident(&t.name)
    );
    // Consecutive row tests share a stage; each set test gets its own, so it sees only the
    // rows earlier rules kept.
    let mut stages: Vec<Vec<(usize, &&TestSpec)>> = Vec::new();
    for s in removing.iter().enumerate() {
        let new_stage = s.1.kind.is_set_test()
            || stages
                .last()
                .is_none_or(|st| st.iter().any(|x| x.1.kind.is_set_test()));
        if new_stage {
            stages.push(vec![s]);
        } else if let Some(last) = stages.last_mut() {
            last.push(s);
        }
    }
    let mut materialize = Vec::new();
    for (k, stage) in stages.iter().enumerate() {
        let mut joins = Vec::new();
        let mut whens = Vec::new();
        for (j, (index, s)) in stage.iter().enumerate() {
            let sc = SqlContext {
                alias: "t",
                n: k * 100 + j,
                scope: &t.name,
                relation,
                survivors: Some("t._rule IS NULL"),
                render,
                this: Some(&raw_relation),
            };
            let v = s.violation(&sc)?;
            for m in v.materialize {
                if !materialize.contains(&m) {
                    materialize.push(m);
                }
            }
            joins.extend(v.joins.iter().map(|j| j.left()));
            whens.push(format!(
                "WHEN {} THEN {}",
                v.predicate,
                quote(&index.to_string())
            ));
        }
        sql = format!(
            "SELECT {}, COALESCE(t._rule, CASE {} END) AS _rule FROM ({sql}) t {}",
            list("t"),
            whens.join(" "),
            joins.join(" ")
        );
    }
    Ok(Compiled { materialize, sql })
}

/// The compiled ingest against the reference, on random tables full of ties, nulls, replays,
/// out-of-order and missing versions, orphans and boundary values: the same label for every
/// row. The reference breaks order ties by `id` (the row's position), as the ingest does.
#[cfg(test)]
mod differential {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use arrow::array::{
        Array, ArrayRef, AsArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
        TimestampMicrosecondArray,
    };
    use arrow::datatypes::Int64Type;

    use super::reference_ingest_sql;
    use crate::contracts::ingest::rows_relation;
    use crate::contracts::ingest_sql;
    use crate::engine::{Engine, RAW, SOURCES};
    use crate::project::data_tests::{TestKind, TestSpec, parse_test};
    use crate::schema::{ColumnType, Registry};

    const TABLES: &str = "
version: 2
sources:
  - name: snapshot
    tables:
      - name: t
        columns:
          - { name: id, data_type: bigint }
          - { name: k1, data_type: varchar }
          - { name: k2, data_type: varchar }
          - { name: ts, data_type: timestamp }
          - { name: ord, data_type: varchar }
          - { name: ver, data_type: integer }
          - { name: a, data_type: varchar }
          - { name: x, data_type: double }
          - { name: ref, data_type: varchar }
      - name: refs
        columns:
          - { name: key, data_type: varchar }
";

    /// (column, test) in declared order: row and set rules interleaved.
    const RULES: &[(Option<&str>, &str)] = &[
        (Some("k1"), "{not_null: {on_fail: quarantine}}"),
        (
            Some("a"),
            "{accepted_values: {values: [p, q], on_fail: quarantine}}",
        ),
        (
            None,
            "{deduplicate: {key: [k1, k2], order_by: [ts, ord], on_fail: quarantine, rule: replay}}",
        ),
        (
            Some("x"),
            "{accepted_range: {min_value: 0, on_fail: quarantine}}",
        ),
        (
            None,
            "{version_sequence: {key: [k1], version: ver, order_by: [ts, ord], on_fail: quarantine}}",
        ),
        (Some("ord"), "{unique: {on_fail: quarantine}}"),
        (
            Some("ref"),
            "{relationships: {to: refs, field: key, on_fail: quarantine}}",
        ),
        (
            None,
            "{unique_combination_of_columns: {combination_of_columns: [k2, a], on_fail: quarantine, where: \"x < 3\"}}",
        ),
        (
            None,
            "{expression_is_true: {expression: \"x < 8\", on_fail: quarantine}}",
        ),
        (
            None,
            "{deduplicate: {key: [k2], order_by: [ord], where: \"a = 'p'\", on_fail: dead_letter, rule: late}}",
        ),
    ];

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
            xs[(self.next() % xs.len() as u64) as usize]
        }
    }

    fn table(rng: &mut Rng, n: usize) -> RecordBatch {
        let s = |rng: &mut Rng, xs: &[Option<&str>]| {
            Arc::new(StringArray::from(
                (0..n).map(|_| rng.pick(xs)).collect::<Vec<_>>(),
            )) as ArrayRef
        };
        let day = 86_400_000_000i64;
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(0..n as i64)),
            s(rng, &[Some("a"), Some("b"), Some("c"), None]),
            s(rng, &[Some("u"), Some("v"), Some(""), None]),
            Arc::new(
                TimestampMicrosecondArray::from(
                    (0..n)
                        .map(|_| rng.pick(&[Some(0), Some(day), Some(day), Some(-1), None]))
                        .collect::<Vec<_>>(),
                )
                .with_timezone("UTC"),
            ),
            s(rng, &[Some("o1"), Some("o2"), Some("o3"), Some("o4"), None]),
            Arc::new(Int32Array::from(
                (0..n)
                    .map(|_| rng.pick(&[Some(1), Some(1), Some(2), Some(3), Some(0), None]))
                    .collect::<Vec<_>>(),
            )),
            s(rng, &[Some("p"), Some("q"), Some("r"), None]),
            Arc::new(Float64Array::from(
                (0..n)
                    .map(|_| {
                        rng.pick(&[
                            Some(0.0),
                            Some(-0.0),
                            Some(2.5),
                            Some(9.0),
                            Some(-1.0),
                            None,
                        ])
                    })
                    .collect::<Vec<_>>(),
            )),
            s(rng, &[Some("r1"), Some("r2"), Some("orphan"), None]),
        ];
        let reg = registry();
        let t = reg.expect_table("t").unwrap();
        RecordBatch::try_new(t.arrow_schema(), cols).unwrap()
    }

    fn registry() -> Registry {
        Registry::parse_files(&[(PathBuf::from("t.yml"), TABLES.to_string())]).unwrap()
    }

    fn specs(reg: &Registry) -> Vec<TestSpec> {
        let t = reg.expect_table("t").unwrap();
        RULES
            .iter()
            .map(|(col, y)| {
                let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(y).unwrap();
                let column = col.map(|c| {
                    let ty: ColumnType = t.column(c).unwrap().column_type;
                    (c, ty)
                });
                parse_test(Path::new("t.yml"), "t", column, &v, None).unwrap()
            })
            .collect()
    }

    /// id → label, from a result whose `id` is column 0 and label column `label`.
    fn labels(batches: &[RecordBatch], label: usize) -> BTreeMap<i64, Option<i64>> {
        let mut out = BTreeMap::new();
        for b in batches {
            let ids = b.column(0).as_primitive::<Int64Type>();
            let l =
                arrow::compute::cast(b.column(label), &arrow::datatypes::DataType::Int64).unwrap();
            let l = l.as_primitive::<Int64Type>();
            for i in 0..b.num_rows() {
                out.insert(ids.value(i), l.is_valid(i).then(|| l.value(i)));
            }
        }
        out
    }

    #[test]
    fn compiled_ingest_labels_every_row_as_the_reference_does() {
        let reg = registry();
        let t = reg.expect_table("t").unwrap();
        let specs = specs(&reg);
        let removing: Vec<&TestSpec> = specs.iter().collect();
        // The reference's order ties broken by position, as the compiled ingest breaks them.
        let by_position: Vec<TestSpec> = specs
            .iter()
            .cloned()
            .map(|mut s| {
                if let TestKind::Deduplicate { order_by, .. }
                | TestKind::VersionSequence { order_by, .. } = &mut s.kind
                {
                    order_by.push("id".into());
                }
                s
            })
            .collect();
        let reference_rules: Vec<&TestSpec> = by_position.iter().collect();
        let render = |s: &str| Ok(s.to_string());
        let relation = |to: &str| format!("{SOURCES}.{to}");
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut seen = BTreeMap::new();
        for round in 0..40 {
            let n = 1 + (rng.next() % 160) as usize;
            let dir = tempfile::tempdir().unwrap();
            let threads = 1 + round % 3;
            let engine = Engine::new(&Default::default(), threads, dir.path(), 256 << 20).unwrap();
            let batch = table(&mut rng, n);
            let file = dir.path().join("t.parquet");
            let group = 1 + (rng.next() % 50) as usize;
            crate::table_io::write_in_row_groups(&file, &batch, group);
            engine
                .register_parquet(RAW, "t", &file.to_string_lossy(), Some(t.arrow_schema()))
                .unwrap();
            let (schema, name) = rows_relation("t")
                .split_once('.')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .unwrap();
            engine
                .register_numbered(
                    &schema,
                    &name,
                    std::slice::from_ref(&file),
                    &t.arrow_schema(),
                )
                .unwrap();
            let refs = reg.expect_table("refs").unwrap();
            let keys = RecordBatch::try_new(
                refs.arrow_schema(),
                vec![Arc::new(StringArray::from(vec![
                    Some("r1"),
                    Some("r2"),
                    None,
                ]))],
            )
            .unwrap();
            engine
                .register_batches(SOURCES, "refs", refs.arrow_schema(), vec![keys])
                .unwrap();

            let expected = reference_ingest_sql(t, &reference_rules, &relation, &render).unwrap();
            engine
                .materialize(&expected.materialize, "reference")
                .unwrap();
            let expected = labels(&engine.query(&expected.sql, "reference").unwrap(), 9);
            let compiled = ingest_sql(t, &removing, &relation, &render).unwrap();
            engine
                .materialize(&compiled.materialize, "compiled")
                .unwrap();
            let got = labels(&engine.query(&compiled.sql, "compiled").unwrap(), 10);
            assert_eq!(got.len(), n, "round {round}: every row once");
            assert_eq!(got, expected, "round {round}: {n} rows, {threads} threads");
            for l in got.values() {
                *seen.entry(*l).or_insert(0u32) += 1;
            }
        }
        // Every rule labelled some row across the rounds, and some rows passed: the tables
        // exercise what they claim to.
        for k in 0..RULES.len() as i64 {
            assert!(
                seen.contains_key(&Some(k)),
                "rule {k} never fired: {seen:?}"
            );
        }
        assert!(seen.contains_key(&None));
    }
}
