//! The Parquet bytes of a spill file, each column encoded as chosen here
//! rather than as polars' writer guesses.
//!
//! polars' `ParquetWriter` tries a dictionary for every column: it
//! estimates the distinct values of each (a HyperLogLog pass over every
//! id, amount and coordinate) and builds a hash-table dictionary where the
//! estimate is low enough, as for amounts and coordinates. A spill file is
//! written once and read back once or twice within the scan, where size
//! matters less than time: that guessing was most of the cost of writing
//! the spill of a 10M-row month. Here integer codes (`narrow::to_codes`:
//! few values, dictionary-encoded through polars' cheap min-max path) keep
//! the dictionary and every other column is written plain.

use polars::prelude::*;
use polars_parquet::read::ParquetError;
use polars_parquet::write::{
    array_to_columns, to_parquet_schema, CompressionOptions, Compressor, DynIter, DynStreamingIterator, Encoding,
    FallibleStreamingIterator, FileWriter, StatisticsOptions, Version, WriteOptions,
};

/// Rows per row group, as polars' writer makes them.
const ROW_GROUP_ROWS: usize = 512 * 512;

/// `df` as an uncompressed Parquet file without statistics.
pub(crate) fn parquet_bytes(df: &DataFrame) -> PolarsResult<Vec<u8>> {
    let schema = df.schema().to_arrow(CompatLevel::newest());
    let parquet_schema = to_parquet_schema(&schema)?;
    let encodings: Vec<Encoding> = schema.iter_values().map(|f| encoding_of(&f.dtype)).collect();
    let options = WriteOptions {
        statistics: StatisticsOptions::empty(),
        compression: CompressionOptions::Uncompressed,
        version: Version::V1,
        data_page_size: None,
    };
    // Room for the plain values and the pages' headers: grown by doubling,
    // the bytes of a 60 MB file were copied again and again (pages not
    // written to take no memory).
    let room = df.estimated_size() + df.width() * 64 * 1024;
    let mut writer = FileWriter::try_new(Vec::with_capacity(room), schema, options)?;
    let mut start = 0;
    while start < df.height() {
        let mut group = df.slice(start as i64, ROW_GROUP_ROWS);
        start += group.height();
        // `iter_chunks` needs the columns' chunks aligned.
        group.align_chunks_par();
        for batch in group.iter_chunks(CompatLevel::newest(), false) {
            if batch.is_empty() {
                continue;
            }
            let rows = batch.len() as u64;
            let mut columns = Vec::with_capacity(batch.columns().len());
            for ((array, type_), encoding) in batch.columns().iter().zip(parquet_schema.fields()).zip(&encodings) {
                for pages in array_to_columns(array, type_.clone(), options, &[*encoding])? {
                    // The compressor takes Parquet's errors (as polars' writer does).
                    let pages = pages.map(|page| page.map_err(|e| ParquetError::FeatureNotSupported(format!("reraised in polars: {e}"))));
                    let compressed = Compressor::new_from_vec(pages, options.compression, Vec::new()).map_err(PolarsError::from);
                    columns.push(Ok(DynStreamingIterator::new(compressed)));
                }
            }
            writer.write(rows, DynIter::new(columns.into_iter()))?;
        }
    }
    writer.end(None)?;
    Ok(writer.into_inner())
}

/// A dictionary for integer codes, plain for everything else (booleans
/// are plain in Parquet anyway).
fn encoding_of(dtype: &ArrowDataType) -> Encoding {
    match dtype {
        ArrowDataType::UInt32 => Encoding::RleDictionary,
        _ => Encoding::Plain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_of_every_spilled_kind_of_column_reads_back_as_written() {
        let n = ROW_GROUP_ROWS + 7;
        let text: Vec<Option<String>> = (0..n).map(|i| (i % 5 != 0).then(|| format!("T{i:012}"))).collect();
        let mut df = df!(
            "txn_id" => text,
            "code" => (0..n).map(|i| (i % 3 != 1).then_some((i % 4) as u32)).collect::<Vec<_>>(),
            "fen" => (0..n).map(|i| (i % 7 != 0).then_some(i as i64 * 37 - 5_000)).collect::<Vec<_>>(),
            "lat" => (0..n).map(|i| Some(31.0 + i as f64 / 1e6)).collect::<Vec<_>>(),
            "ok" => (0..n).map(|i| (i % 11 != 0).then_some(i % 2 == 0)).collect::<Vec<_>>(),
            "at" => (0..n).map(|i| Some(1_700_000_000_000i64 + i as i64)).collect::<Vec<_>>(),
        )
        .unwrap();
        let at = df
            .column("at")
            .unwrap()
            .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
            .unwrap();
        df.with_column(at).unwrap();
        // Two chunks, as a stacked batch has.
        let mut stacked = df.slice(0, 1000);
        stacked.vstack_mut(&df.slice(1000, n)).unwrap();
        let bytes = parquet_bytes(&stacked).unwrap();
        let back = ParquetReader::new(std::io::Cursor::new(bytes)).finish().unwrap();
        assert_eq!(back.schema(), df.schema());
        assert!(back.equals_missing(&df));
    }
}
