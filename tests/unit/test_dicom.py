"""DICOM SR import: text rendering, metadata, and the batch policy for bad files (core/formats/dicom.py)."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.fileset import FileSet
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from core.formats import archive as zip_members
from core.formats.dicom import iter_dicom, iter_dicom_bytes, sr_to_text
from core.types import Issue, ReportLensError

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "dicom-sr"
needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(), reason=f"shared DICOM SR samples not found at {SHARED} (../shared/data/dicom-sr)"
)
SAMPLES = [
    "reportsi.dcm",
    "reportsi_with_empty_number_tags.dcm",
    "sr_document.dcm",
    "sr_document_with_multiple_groups.dcm",
    "test-SR.dcm",
]


def read_one(path: Path) -> tuple[list, list[Issue]]:
    issues: list[Issue] = []
    return list(iter_dicom(path, issues)), issues


# --- built datasets (no shared data needed) -------------------------------------------------------------------


def code(value: str, meaning: str, scheme: str = "DCM") -> Sequence:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return Sequence([item])


def content(value_type: str, name: str | None, rel: str = "CONTAINS", **kw) -> Dataset:
    item = Dataset()
    item.RelationshipType, item.ValueType = rel, value_type
    if name:
        item.ConceptNameCodeSequence = code("x" + name[:4], name)
    for key, value in kw.items():
        setattr(item, key, value)
    return item


def num(name: str, value: str, unit: str, meaning: str) -> Dataset:
    mv = Dataset()
    mv.NumericValue = value
    mv.MeasurementUnitsCodeSequence = code(unit, meaning, "UCUM")
    return content("NUM", name, MeasuredValueSequence=Sequence([mv]))


def save(ds: Dataset, path: Path, sop_class: str) -> Path:
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, generate_uid()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = sop_class, ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)
    return path


def built_sr() -> Dataset:
    ds = Dataset()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = "Doe^Jane", "PID-12345", "19600101"
    ds.Modality, ds.StudyDescription, ds.StudyDate = "SR", "CT chest", "20240131"
    ds.ValueType, ds.ContinuityOfContent = "CONTAINER", "SEPARATE"
    ds.ConceptNameCodeSequence = code("18748-4", "Diagnostic imaging report", "LN")
    findings = content("CONTAINER", "Findings", ContinuityOfContent="CONTINUOUS")
    findings.ContentSequence = Sequence(
        [
            content("TEXT", "Finding", TextValue="There is a"),
            num("Diameter", "2.1", "cm", "centimeter"),
            content("TEXT", "Finding", TextValue="nodule in the right upper lobe."),
            content("CODE", "Finding site", ConceptCodeSequence=code("39607008", "Lung", "SCT")),
        ]
    )
    lungs = content("CONTAINER", "Lungs", ContinuityOfContent="SEPARATE")
    lungs.ContentSequence = Sequence([content("TEXT", "Finding", TextValue="No pleural effusion.\r\nNo pneumothorax.")])
    findings.ContentSequence.append(lungs)
    impression = content("CONTAINER", "Impression", ContinuityOfContent="SEPARATE")
    impression.ContentSequence = Sequence([content("TEXT", "Impression", TextValue="Solitary pulmonary nodule.")])
    ds.ContentSequence = Sequence(
        [
            content("PNAME", "Person Observer Name", rel="HAS OBS CONTEXT", PersonName="Smith^Alice"),
            content("TEXT", "Subject ID", rel="HAS OBS CONTEXT", TextValue="PID-12345"),
            findings,
            impression,
        ]
    )
    return ds


def test_rendering_of_a_built_report() -> None:
    text = sr_to_text(built_sr())
    assert text == (
        "FINDINGS:\n"
        "  There is a 2.1 cm nodule in the right upper lobe.\n"
        "  Finding site: Lung\n"
        "  LUNGS:\n"
        "    No pleural effusion.\n"
        "    No pneumothorax.\n"
        "\n"
        "IMPRESSION:\n"
        "  Solitary pulmonary nodule."
    )


def test_identifying_fields_stay_out_of_text_and_meta(tmp_path: Path) -> None:
    tasks, issues = read_one(save(built_sr(), tmp_path / "report.dcm", "1.2.840.10008.5.1.4.1.1.88.33"))
    assert issues == [] and len(tasks) == 1
    t = tasks[0]
    assert t.task_id is None and t.annotations == () and t.source_name == "report.dcm"
    assert t.meta["study_description"] == "CT chest" and t.meta["study_date"] == "2024-01-31"
    assert t.meta["document_title"] == "Diagnostic imaging report"
    assert t.meta["sop_class"] == "Comprehensive SR Storage"
    # UIDs are random digits, so they are left out of the search for the birth date
    everything = t.text + repr({k: v for k, v in t.meta.items() if not k.endswith("_uid")})
    for secret in ("Doe", "Jane", "PID-12345", "19600101", "1960-01-01", "Smith", "Alice"):
        assert secret not in everything


def test_non_sr_dicom_is_reported_with_its_sop_class(tmp_path: Path) -> None:
    ds = Dataset()
    ds.Modality, ds.ImageComments = "CT", "scout"
    path = save(ds, tmp_path / "ct.dcm", "1.2.840.10008.5.1.4.1.1.2")
    tasks, issues = read_one(path)
    assert tasks == []
    assert [(i.level, i.code, i.task) for i in issues] == [("error", "dicom_no_text", "File ct.dcm")]
    assert "CT Image Storage" in issues[0].message and "ct.dcm" in issues[0].message


def test_non_dicom_file_given_directly_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "notes.dcm"
    path.write_text("FINDINGS: not a DICOM file at all\n" * 10)
    tasks, issues = read_one(path)
    assert tasks == [] and [i.code for i in issues] == ["file_unreadable"]
    assert "notes.dcm" in issues[0].message and "DICM" in issues[0].message


def test_missing_path_raises(tmp_path: Path) -> None:
    with pytest.raises(ReportLensError, match="does not exist"):
        list(iter_dicom(tmp_path / "nope.dcm", []))


def test_oversized_zip_member_is_skipped_and_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save(built_sr(), tmp_path / "small.dcm", "1.2.840.10008.5.1.4.1.1.88.33")
    archive = tmp_path / "batch.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(tmp_path / "small.dcm", "small.dcm")
        zf.writestr("big.dcm", b"\0" * 5000)
    monkeypatch.setattr(zip_members, "MAX_MEMBER_BYTES", 4000)
    tasks, issues = read_one(archive)
    assert [t.source_name for t in tasks] == ["small.dcm"]
    assert [(i.code, i.task) for i in issues] == [("file_too_large", "File big.dcm")]


def test_not_a_zip_and_not_dicom_bytes() -> None:
    issues: list[Issue] = []
    assert list(iter_dicom_bytes(b"PK\x03\x04 broken archive", "upload.zip", issues)) == []
    assert [i.code for i in issues] == ["file_unreadable"]


# --- the shared real samples -------------------------------------------------------------------------------------


@needs_shared
@pytest.mark.parametrize("name", SAMPLES)
def test_every_sample_gives_text_and_clean_meta(name: str) -> None:
    tasks, issues = read_one(SHARED / name)
    assert issues == [] and len(tasks) == 1
    t = tasks[0]
    assert t.text.strip() and t.task_id is None and t.annotations == () and t.source_name == name
    assert t.meta["file_name"] == name and t.meta["modality"] == "SR" and t.meta["sop_instance_uid"]
    assert not any(k.lower().startswith("patient") for k in t.meta)


@needs_shared
@pytest.mark.parametrize("name", ["reportsi.dcm", "reportsi_with_empty_number_tags.dcm"])
def test_basic_text_sr(name: str) -> None:
    (t,), _ = read_one(SHARED / name)
    assert t.text == "SECTION HEADING:\n  Enter text"
    assert t.meta["sop_class"] == "Basic Text SR Storage"
    assert t.meta["document_title"] == "Document Title"
    assert t.meta["series_description"] == "IHE Year 2 - Simple Image Report"
    assert (t.meta["completion_flag"], t.meta["verification_flag"]) == ("PARTIAL", "UNVERIFIED")
    assert "Last Name" not in t.text + repr(t.meta)  # PatientName and ReferringPhysicianName


@needs_shared
def test_comprehensive_sr_nested_text_code_num() -> None:
    (t,), _ = read_one(SHARED / "test-SR.dcm")
    lines = t.text.split("\n")
    assert lines[0] == "A mass of 3 cm was detected."  # CONTINUOUS container: TEXT + NUM + TEXT as one sentence
    assert lines[1:4] == ["  Code: Sample Code 1", "  Code: Sample Code 2", "  Code: Sample Code"]
    assert lines[4:7] == ["A mass of", "Diameter: 3 cm", "was detected."]  # nested SEPARATE container
    assert "Sample Text\nA\nB\nC\n  Inferred Sample Text" in t.text  # CR / CRLF normalised
    assert "Date: 2000-12-06" in lines and "Time: 12:00:00" in lines
    assert "1.2.3.4.5" not in t.text  # UID references are not report text
    assert t.meta["document_title"] == "Diagnosis" and t.meta["sop_class"] == "Comprehensive SR Storage"
    assert (t.meta["completion_flag"], t.meta["verification_flag"]) == ("COMPLETE", "VERIFIED")


@needs_shared
def test_tid1500_measurement_report() -> None:
    (t,), _ = read_one(SHARED / "sr_document.dcm")
    assert t.text.startswith("Procedure reported: CT unspecified body region\n\nIMAGING MEASUREMENTS:\n")
    assert "    Finding: Spinal cord\n" in t.text
    assert "    Area of defined region: 1.7 cm2\n      Normality: Normal" in t.text
    assert "IMAGE LIBRARY" not in t.text  # empty section dropped
    assert "Foo" not in t.text and "English" not in t.text  # observer context and language left out
    assert t.meta["document_title"] == "Imaging Measurement Report" and t.meta["study_date"] == "2004-01-19"


@needs_shared
def test_nested_headings_keep_document_order() -> None:
    (t,), _ = read_one(SHARED / "sr_document_with_multiple_groups.dcm")
    lines = t.text.split("\n")
    assert lines.index("IMAGING MEASUREMENTS:") < lines.index("  MEASUREMENT GROUP:")
    assert lines.count("  MEASUREMENT GROUP:") == 4
    order = [
        "Intensity Histogram Mean: -119.07385253906 HU",
        "Finding: Nodule",
        "Finding Site: Lung",
        "Diameter: 10.0 mm",
        "Finding: Aorta",
        "Diameter: 20.0 mm",
        "Volume: 200.0 mm3",
    ]
    order = ["    " + line for line in order]  # group content sits two levels deep
    assert [lines.index(x) for x in order] == sorted(lines.index(x) for x in order)
    for secret in ("Doe", "John", "CompressedSamples", "1CT1"):
        assert secret not in t.text + repr(t.meta)


@needs_shared
def test_truncated_file_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "trunc.dcm"
    path.write_bytes((SHARED / "reportsi.dcm").read_bytes()[:300])
    tasks, issues = read_one(path)
    assert tasks == []
    assert [(i.level, i.code, i.task) for i in issues] == [("error", "file_unreadable", "File trunc.dcm")]
    assert "truncated" in issues[0].message


@needs_shared
def test_zip_with_one_good_and_one_corrupt_member(tmp_path: Path) -> None:
    archive = tmp_path / "batch.zip"
    data = (SHARED / "test-SR.dcm").read_bytes()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("reports/good.dcm", data)
        zf.writestr("reports/bad.dcm", data[:1500] + b"\xff" * 64)
    readers = [lambda i: iter_dicom(archive, i), lambda i: iter_dicom_bytes(archive.read_bytes(), "batch.zip", i)]
    for read in readers:
        issues: list[Issue] = []
        tasks = list(read(issues))
        assert [t.source_name for t in tasks] == ["reports/good.dcm"]
        assert tasks[0].text.startswith("A mass of 3 cm was detected.")
        assert len(issues) == 1 and issues[0].code == "file_unreadable" and issues[0].task == "File reports/bad.dcm"
        assert "batch.zip" in issues[0].message


@needs_shared
def test_folder_walk_checks_preamble_not_extension(tmp_path: Path) -> None:
    root = tmp_path / "export"
    for i, name in enumerate(SAMPLES):
        target = root / f"series{i % 2}" / f"IM{i:04d}"  # no .dcm extension, nested
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SHARED / name, target)
    (root / "README.txt").write_text("exported from PACS")
    (root / "series0" / "fake.dcm").write_text("not dicom")
    tasks, issues = read_one(root)
    assert [t.source_name for t in tasks] == [
        "series0/IM0000",
        "series0/IM0002",
        "series0/IM0004",
        "series1/IM0001",
        "series1/IM0003",
    ]
    assert [t.position for t in tasks] == [0, 1, 2, 3, 4]
    assert [(i.level, i.code) for i in issues] == [("info", "dicom_skipped_files")]
    assert "README.txt" in issues[0].message and "series0/fake.dcm" in issues[0].message


@needs_shared
def test_dicomdir_index_is_skipped_not_an_error(tmp_path: Path) -> None:
    fs = FileSet()
    fs.add(pydicom.dcmread(SHARED / "sr_document.dcm"))
    fs.write(tmp_path / "cd")
    tasks, issues = read_one(tmp_path / "cd")
    assert len(tasks) == 1 and tasks[0].text.startswith("Procedure reported:")
    assert [(i.level, i.code) for i in issues] == [("info", "dicom_skipped_files")]
    assert "DICOMDIR" in issues[0].message
    tasks, issues = read_one(tmp_path / "cd" / "DICOMDIR")
    assert tasks == [] and [i.code for i in issues] == ["dicom_skipped_files"]
