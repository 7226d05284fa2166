"""Reading import files without a database: line numbers, hostile lines, the cell guard."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from db.errors import ErrorCode
from db.imports import columns
from db.imports.columns import FORMULA_STARTS, HeaderError, guard, unguard
from db.imports.paths import format_path, parse_path
from db.imports.reading import MAX_LINE, RecordReader, TooManyRows, count_records, header_of
from db.imports.seen import SeenKeys
from db.models import ImportKind

ITEMS = ImportKind.ITEMS


def records(tmp_path: Path, content: bytes, kind: ImportKind = ITEMS) -> list:
    path = tmp_path / "file"
    path.write_bytes(content)
    with RecordReader(path, kind) as reader:
        return list(reader)


def test_lines_are_physical_lines_from_the_header_as_line_1(tmp_path):
    # given CRLF, a bare CR, a quoted cell over three lines, a blank line and a row of
    # only delimiters (a spreadsheet's tail)
    content = (
        b"sku,name,unit_price\r\n"
        b"A,Apple,1\r"
        b'B,"Two\r\nline\nname",2\r\n'
        b"\r\n"
        b",,\r\n"
        b"C,Cherry,3\r\n"
    )
    # when it is read
    got = records(tmp_path, content)
    # then each record carries the line it starts on, blank ones are skipped
    assert [(r.line, r.cells["sku"], r.cells["name"]) for r in got] == [
        (2, "A", "Apple"),
        (3, "B", "Two\r\nline\nname"),
        (8, "C", "Cherry"),
    ]


def test_a_bom_and_semicolons_and_header_spelling(tmp_path):
    content = "\ufeffSKU ; Unit Price;NAME\n'=A;12,50;x\n".encode()
    with_bom = tmp_path / "f"
    with_bom.write_bytes(content)
    with RecordReader(with_bom, ITEMS) as reader:
        assert reader.shape.delimiter == ";"
        assert reader.shape.label("unit_price") == "Unit Price"
        (record,) = list(reader)
    # the guard's apostrophe is taken off: the cell stands for "=A"
    assert record.cells == {"sku": "=A", "unit_price": "12,50", "name": "x"}


def test_bad_records_are_reported_and_reading_carries_on(tmp_path):
    content = (
        b"sku,name,unit_price\n"
        b"A,too,many,fields\n"
        b"B,short\n"
        b'"C"x,bad quoting,1\n'
        b"D,Fine,4\n"
        b"E,trailing empties are fine,5,,\n"
    )
    got = records(tmp_path, content)
    problems = [(r.line, r.problems[0].message) for r in got if r.problems]
    assert problems == [
        (2, "The row has 4 fields, the header has 3"),
        (3, "The row has 2 fields, the header has 3"),
        (4, "Malformed CSV: ',' expected after '\"'"),
    ]
    assert [r.cells["sku"] for r in got if not r.problems] == ["D", "E"]


def test_an_unterminated_quote_is_one_bad_record(tmp_path):
    got = records(tmp_path, b'sku,name,unit_price\nA,a,1\nB,"never closed,2\nC,c,3\n')
    assert [(r.line, bool(r.problems)) for r in got] == [(2, False), (3, True)]
    assert "unexpected end of data" in got[1].problems[0].message


def test_a_line_over_the_limit_is_skipped_in_pieces(tmp_path):
    # given a line longer than MAX_LINE characters between two good rows (CRLF endings)
    long_line = b"X," + b"y" * (MAX_LINE + 10) + b",1\r\n"
    content = b"sku,name,unit_price\r\nA,a,1\r\n" + long_line + b"B,b,2\r\n"
    got = records(tmp_path, content)
    # then it is one bad record at its own line, and the next row keeps its number
    assert [(r.line, r.cells.get("sku")) for r in got] == [(2, "A"), (3, None), (4, "B")]
    assert got[1].problems[0].code is ErrorCode.INVALID
    assert "longer than" in got[1].problems[0].message


def test_a_one_megabyte_field_is_read(tmp_path):
    name = "n" * 1_000_000
    got = records(tmp_path, f"sku,name,unit_price\nA,{name},1\nB,b,2\n".encode())
    assert [len(r.cells["name"]) for r in got] == [1_000_000, 1]


def test_json_lines(tmp_path):
    content = (
        b'{"sku": "A", "name": "Apple", "unit_price": "1.50", "archived": false}\n'
        b"\n"
        b'{"sku": "B", "colour": "red", "name": "B", "unit_price": 2}\n'
        b"not json\n"
        b"[1, 2]\n"
    )
    got = records(tmp_path, content)
    assert [r.line for r in got] == [1, 3, 4, 5]
    assert got[0].cells == {"sku": "A", "name": "Apple", "unit_price": "1.50", "archived": False}
    problems = [(p.column, p.message) for p in got[1].problems]
    assert problems == [("colour", "Unknown column 'colour'")]
    assert got[2].problems[0].message.startswith("Not valid JSON")
    assert got[3].problems[0].message == "Each line must be a JSON object"


@pytest.mark.parametrize(
    ("line", "missing", "unknown", "repeated"),
    [
        ("sku,name", ["unit_price"], [], []),
        ("sku,name,unit_price,colour,size", [], ["colour", "size"], []),
        ("sku,name,unit_price,SKU", [], [], ["sku"]),
        ('{"sku": "A", "price": 1}', ["name", "unit_price"], ["price"], []),
    ],
)
def test_header_problems_name_the_columns(line, missing, unknown, repeated):
    with pytest.raises(HeaderError) as raised:
        header_of(ITEMS, line)
    assert (raised.value.missing, raised.value.unknown, raised.value.repeated) == (
        missing, unknown, repeated)
    for name in missing + unknown + repeated:
        assert name in raised.value.message


def test_ten_thousand_unknown_columns_are_listed_briefly():
    header = "sku,name,unit_price," + ",".join(f"c{i}" for i in range(9_997))
    with pytest.raises(HeaderError) as raised:
        header_of(ITEMS, header)
    assert len(raised.value.unknown) == 9_997
    assert f"and {9_997 - columns.LISTED_NAMES:,} more" in raised.value.message
    assert len(raised.value.message) < 500


def test_the_stock_export_header_reads_as_a_count_file():
    shape = header_of(ImportKind.STOCK_COUNTS,
                      "sku,warehouse,on_hand,reserved,available,reorder_point,low")
    assert shape.columns == ("sku", "warehouse", "counted", None, None, None, None)
    assert shape.label("counted") == "on_hand"


def test_counting_stops_past_the_limit(tmp_path):
    path = tmp_path / "bomb"
    path.write_bytes(b"sku,name,unit_price\n" + b"a,b,1\n" * 10_000)
    assert count_records(path, ITEMS, 10_000) == 10_000
    with pytest.raises(TooManyRows):
        count_records(path, ITEMS, 9_999)


@given(st.text())
def test_guarded_text_reads_back_exactly_and_never_starts_a_formula(text):
    guarded = guard(text)
    assert unguard(guarded) == text
    assert not guarded.startswith(FORMULA_STARTS)


@given(st.lists(st.text(min_size=1).map(str.strip).filter(bool), min_size=1, max_size=5))
def test_category_paths_read_back_exactly(names):
    assert parse_path(format_path(names)) == tuple(names)


def test_repeated_keys_point_at_their_first_line(tmp_path):
    seen = SeenKeys(tmp_path / "seen")
    try:
        assert seen.first_lines([("a", 2), ("b", 3), ("a", 4)]) == {4: 2}
        # a later batch: repeats of earlier batches and within itself
        assert seen.first_lines([("c", 5), ("b", 6), ("b", 7), ("c", 8)]) == {6: 3, 7: 3, 8: 5}
    finally:
        seen.close()
    assert not (tmp_path / "seen").exists()
