//! Building a table's `RecordBatch` row by row against its declared schema.
//!
//! A [`TableBuilder`] is made from an Arrow schema (a registry table's, or a log's). Code that
//! fills it asks once for a typed handle per column by name — which checks the column exists
//! with that type — then appends values through the handle. [`TableBuilder::end_row`] fills
//! every column the row did not set with null, so optional columns need no code.

use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder,
    Int32Builder, Int64Builder, ListBuilder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};

use crate::error::{Error, Result};

enum Col {
    Str(StringBuilder),
    StrList(ListBuilder<StringBuilder>),
    Date(Date32Builder),
    Ts(TimestampMicrosecondBuilder),
    Bool(BooleanBuilder),
    I32(Int32Builder),
    I64(Int64Builder),
    F64(Float64Builder),
    Dec(Decimal128Builder),
}

impl Col {
    fn len(&self) -> usize {
        match self {
            Col::Str(b) => b.len(),
            Col::StrList(b) => b.len(),
            Col::Date(b) => b.len(),
            Col::Ts(b) => b.len(),
            Col::Bool(b) => b.len(),
            Col::I32(b) => b.len(),
            Col::I64(b) => b.len(),
            Col::F64(b) => b.len(),
            Col::Dec(b) => b.len(),
        }
    }

    fn append_null(&mut self) {
        match self {
            Col::Str(b) => b.append_null(),
            Col::StrList(b) => b.append_null(),
            Col::Date(b) => b.append_null(),
            Col::Ts(b) => b.append_null(),
            Col::Bool(b) => b.append_null(),
            Col::I32(b) => b.append_null(),
            Col::I64(b) => b.append_null(),
            Col::F64(b) => b.append_null(),
            Col::Dec(b) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Col::Str(b) => Arc::new(b.finish()),
            Col::StrList(b) => Arc::new(b.finish()),
            Col::Date(b) => Arc::new(b.finish()),
            Col::Ts(b) => Arc::new(b.finish()),
            Col::Bool(b) => Arc::new(b.finish()),
            Col::I32(b) => Arc::new(b.finish()),
            Col::I64(b) => Arc::new(b.finish()),
            Col::F64(b) => Arc::new(b.finish()),
            Col::Dec(b) => Arc::new(b.finish()),
        }
    }
}

macro_rules! handle {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name(usize);
    };
}
handle!(/// A `varchar` column.
    StrCol);
handle!(/// A `varchar[]` column.
    ListCol);
handle!(/// A `date` column (days since the epoch).
    DateCol);
handle!(/// A `timestamp` column (µs since the epoch, UTC).
    TsCol);
handle!(/// A `boolean` column.
    BoolCol);
handle!(/// An `integer` column.
    I32Col);
handle!(/// A `bigint` column.
    I64Col);
handle!(/// A `double` column.
    F64Col);
handle!(/// A `decimal(p,s)` column, appended as its unscaled integer.
    DecCol);

/// A typed column handle that can be looked up by name (see [`table_columns!`]).
pub trait Handle: Sized {
    fn get(tb: &TableBuilder, column: &str) -> Result<Self>;
}

macro_rules! impl_handle {
    ($($t:ident => $f:ident),*) => {
        $(impl Handle for $t {
            fn get(tb: &TableBuilder, column: &str) -> Result<Self> {
                tb.$f(column)
            }
        })*
    };
}
impl_handle!(StrCol => str_col, ListCol => list_col, DateCol => date_col, TsCol => ts_col, BoolCol => bool_col,
    I32Col => i32_col, I64Col => i64_col, F64Col => f64_col, DecCol => dec_col);

/// Declare a struct of column handles whose field names are the column names; `new` looks each
/// one up in a [`TableBuilder`], failing if the schema registry disagrees on name or type.
#[macro_export]
macro_rules! table_columns {
    ($(#[$m:meta])* $vis:vis struct $name:ident { $($field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        $vis struct $name { $(pub $field: $ty),* }
        impl $name {
            pub fn new(tb: &$crate::builder::TableBuilder) -> $crate::error::Result<Self> {
                Ok(Self { $($field: <$ty as $crate::builder::Handle>::get(tb, stringify!($field))?),* })
            }
        }
    };
}

pub struct TableBuilder {
    name: String,
    schema: SchemaRef,
    cols: Vec<Col>,
    rows: usize,
    /// Bit i set: column i has a value in the current row.
    set: u64,
}

impl TableBuilder {
    pub fn new(name: &str, schema: SchemaRef) -> Result<TableBuilder> {
        let mut cols = Vec::with_capacity(schema.fields().len());
        for f in schema.fields() {
            cols.push(match f.data_type() {
                DataType::Utf8 => Col::Str(StringBuilder::new()),
                DataType::List(inner) if inner.data_type() == &DataType::Utf8 => {
                    Col::StrList(ListBuilder::new(StringBuilder::new()).with_field(inner.clone()))
                }
                DataType::Date32 => Col::Date(Date32Builder::new()),
                DataType::Timestamp(TimeUnit::Microsecond, tz) => {
                    Col::Ts(TimestampMicrosecondBuilder::new().with_timezone_opt(tz.clone()))
                }
                DataType::Boolean => Col::Bool(BooleanBuilder::new()),
                DataType::Int32 => Col::I32(Int32Builder::new()),
                DataType::Int64 => Col::I64(Int64Builder::new()),
                DataType::Float64 => Col::F64(Float64Builder::new()),
                DataType::Decimal128(p, s) => Col::Dec(
                    Decimal128Builder::new()
                        .with_precision_and_scale(*p, *s)
                        .map_err(|e| Error::arrow(format!("table `{name}`"), e))?,
                ),
                other => {
                    return Err(Error::Internal(format!(
                        "table `{name}`, column `{}`: no row builder for type {other}",
                        f.name()
                    )));
                }
            });
        }
        if cols.len() > 64 {
            return Err(Error::Internal(format!(
                "table `{name}` has more than 64 columns"
            )));
        }
        Ok(TableBuilder {
            name: name.to_string(),
            schema,
            cols,
            rows: 0,
            set: 0,
        })
    }

    fn index(&self, column: &str, want: &str, ok: impl Fn(&Col) -> bool) -> Result<usize> {
        let i = self.schema.index_of(column).map_err(|_| {
            Error::Internal(format!("table `{}` has no column `{column}`", self.name))
        })?;
        if !ok(&self.cols[i]) {
            return Err(Error::Internal(format!(
                "table `{}`, column `{column}` is {} in the schema registry, not {want}",
                self.name,
                self.schema.field(i).data_type()
            )));
        }
        Ok(i)
    }

    pub fn str_col(&self, c: &str) -> Result<StrCol> {
        self.index(c, "varchar", |x| matches!(x, Col::Str(_)))
            .map(StrCol)
    }
    pub fn list_col(&self, c: &str) -> Result<ListCol> {
        self.index(c, "varchar[]", |x| matches!(x, Col::StrList(_)))
            .map(ListCol)
    }
    pub fn date_col(&self, c: &str) -> Result<DateCol> {
        self.index(c, "date", |x| matches!(x, Col::Date(_)))
            .map(DateCol)
    }
    pub fn ts_col(&self, c: &str) -> Result<TsCol> {
        self.index(c, "timestamp", |x| matches!(x, Col::Ts(_)))
            .map(TsCol)
    }
    pub fn bool_col(&self, c: &str) -> Result<BoolCol> {
        self.index(c, "boolean", |x| matches!(x, Col::Bool(_)))
            .map(BoolCol)
    }
    pub fn i32_col(&self, c: &str) -> Result<I32Col> {
        self.index(c, "integer", |x| matches!(x, Col::I32(_)))
            .map(I32Col)
    }
    pub fn i64_col(&self, c: &str) -> Result<I64Col> {
        self.index(c, "bigint", |x| matches!(x, Col::I64(_)))
            .map(I64Col)
    }
    pub fn f64_col(&self, c: &str) -> Result<F64Col> {
        self.index(c, "double", |x| matches!(x, Col::F64(_)))
            .map(F64Col)
    }
    pub fn dec_col(&self, c: &str) -> Result<DecCol> {
        self.index(c, "decimal", |x| matches!(x, Col::Dec(_)))
            .map(DecCol)
    }

    // Handles are only made by the checked constructors above, so the variant always matches;
    // a mismatch would be a bug in this module.
    pub fn str(&mut self, c: StrCol, v: &str) {
        self.set |= 1 << c.0;
        if let Col::Str(b) = &mut self.cols[c.0] {
            b.append_value(v)
        }
    }
    pub fn opt_str(&mut self, c: StrCol, v: Option<&str>) {
        self.set |= 1 << c.0;
        if let Col::Str(b) = &mut self.cols[c.0] {
            b.append_option(v)
        }
    }
    pub fn list<S: AsRef<str>>(&mut self, c: ListCol, v: &[S]) {
        self.set |= 1 << c.0;
        if let Col::StrList(b) = &mut self.cols[c.0] {
            for s in v {
                b.values().append_value(s.as_ref());
            }
            b.append(true);
        }
    }
    pub fn date(&mut self, c: DateCol, v: i32) {
        self.set |= 1 << c.0;
        if let Col::Date(b) = &mut self.cols[c.0] {
            b.append_value(v)
        }
    }
    pub fn opt_date(&mut self, c: DateCol, v: Option<i32>) {
        self.set |= 1 << c.0;
        if let Col::Date(b) = &mut self.cols[c.0] {
            b.append_option(v)
        }
    }
    pub fn ts(&mut self, c: TsCol, v: i64) {
        self.set |= 1 << c.0;
        if let Col::Ts(b) = &mut self.cols[c.0] {
            b.append_value(v)
        }
    }
    pub fn opt_ts(&mut self, c: TsCol, v: Option<i64>) {
        self.set |= 1 << c.0;
        if let Col::Ts(b) = &mut self.cols[c.0] {
            b.append_option(v)
        }
    }
    pub fn bool(&mut self, c: BoolCol, v: bool) {
        self.set |= 1 << c.0;
        if let Col::Bool(b) = &mut self.cols[c.0] {
            b.append_value(v)
        }
    }
    pub fn i32(&mut self, c: I32Col, v: i32) {
        self.set |= 1 << c.0;
        if let Col::I32(b) = &mut self.cols[c.0] {
            b.append_value(v)
        }
    }
    pub fn i64(&mut self, c: I64Col, v: i64) {
        self.set |= 1 << c.0;
        if let Col::I64(b) = &mut self.cols[c.0] {
            b.append_value(v)
        }
    }
    pub fn opt_i64(&mut self, c: I64Col, v: Option<i64>) {
        self.set |= 1 << c.0;
        if let Col::I64(b) = &mut self.cols[c.0] {
            b.append_option(v)
        }
    }
    pub fn f64(&mut self, c: F64Col, v: f64) {
        self.set |= 1 << c.0;
        if let Col::F64(b) = &mut self.cols[c.0] {
            b.append_value(v)
        }
    }
    pub fn opt_f64(&mut self, c: F64Col, v: Option<f64>) {
        self.set |= 1 << c.0;
        if let Col::F64(b) = &mut self.cols[c.0] {
            b.append_option(v)
        }
    }
    /// Append a decimal as its unscaled value (cents for `decimal(18,2)`).
    pub fn dec(&mut self, c: DecCol, v: i128) {
        self.set |= 1 << c.0;
        if let Col::Dec(b) = &mut self.cols[c.0] {
            b.append_value(v)
        }
    }
    pub fn opt_dec(&mut self, c: DecCol, v: Option<i128>) {
        self.set |= 1 << c.0;
        if let Col::Dec(b) = &mut self.cols[c.0] {
            b.append_option(v)
        }
    }

    /// Close the current row: columns it did not set become null.
    pub fn end_row(&mut self) {
        self.rows += 1;
        let all = if self.cols.len() == 64 {
            u64::MAX
        } else {
            (1u64 << self.cols.len()) - 1
        };
        let mut missing = !self.set & all;
        while missing != 0 {
            let i = missing.trailing_zeros() as usize;
            self.cols[i].append_null();
            missing &= missing - 1;
        }
        self.set = 0;
        debug_assert!(
            self.cols.iter().all(|c| c.len() == self.rows),
            "a column was set twice in one row of `{}`",
            self.name
        );
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The rows built so far as one batch; the builder is empty afterwards.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let arrays: Vec<ArrayRef> = self.cols.iter_mut().map(Col::finish).collect();
        self.rows = 0;
        RecordBatch::try_new(self.schema.clone(), arrays)
            .map_err(|e| Error::arrow(format!("building table `{}`", self.name), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Field, Schema};

    #[test]
    fn unset_columns_become_null_and_types_are_checked() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("amount", DataType::Decimal128(18, 2), true),
            Field::new(
                "tags",
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                true,
            ),
        ]));
        let mut tb = TableBuilder::new("t", schema).unwrap();
        let id = tb.str_col("id").unwrap();
        let amount = tb.dec_col("amount").unwrap();
        let tags = tb.list_col("tags").unwrap();
        assert!(tb.date_col("id").is_err());
        assert!(tb.str_col("nope").is_err());
        tb.str(id, "a");
        tb.dec(amount, 1234);
        tb.list(tags, &["x", "y"]);
        tb.end_row();
        tb.str(id, "b");
        tb.end_row();
        let b = tb.finish().unwrap();
        assert_eq!(b.num_rows(), 2);
        assert!(b.column(1).is_null(1));
        assert_eq!(
            b.column(1)
                .as_primitive::<arrow::datatypes::Decimal128Type>()
                .value(0),
            1234
        );
        assert_eq!(b.column(2).as_list::<i32>().value(0).len(), 2);
    }
}
