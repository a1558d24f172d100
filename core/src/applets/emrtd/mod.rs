//! The ICAO 9303 eMRTD application (passports, and the CIE's travel-document side).

pub mod lds;
pub mod passive;
