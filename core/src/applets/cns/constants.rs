//! File identifiers, references and command bytes of the CNS.
//!
//! Confirmed in OpenSC 14c80b0 `src/libopensc/pkcs15-itacns.c` (`itacns_init`, the data
//! file table) and `card-itacns.c` (`itacns_set_security_env`, `itacns_restore_security_env`,
//! `itacns_pin_cmd`). The CNIPA "CNS Functional Specification 1.1.5" that OpenSC cites
//! (§13.14 for MSE RESTORE) is not public text we could read: **unsure** for anything OpenSC
//! does not exercise (e.g. whether every family accepts SELECT with FCP, P2 `04`).

/// The master file.
pub const MF: [u8; 2] = [0x3F, 0x00];
/// DF 1000: card and chip data.
pub const DF_CARD: [u8; 2] = [0x10, 0x00];
/// EF_IDCarta (3F00/1000/1003): the card id; OpenSC reads at most 16 bytes as the serial.
pub const EF_ID_CARTA: [u8; 2] = [0x10, 0x03];
/// Longest card id OpenSC accepts (`loadFile(…, serial, 16)`).
pub const CARD_ID_MAX: usize = 16;
/// DF 1100: the holder's data and the authentication certificate.
pub const DF_HOLDER: [u8; 2] = [0x11, 0x00];
/// The CNS0 authentication certificate (3F00/1100/1101).
pub const EF_CERT_CNS0: [u8; 2] = [0x11, 0x01];
/// EF_DatiPersonali (3F00/1100/1102).
pub const EF_DATI_PERSONALI: [u8; 2] = [0x11, 0x02];

/// The user PIN's reference (`itacns_check_and_add_keyset(…, 0x10, …)` for CNS0); the PUK
/// is the next one, `11`.
pub const PIN_REF: u8 = 0x10;
/// STIncard masks need bit 8 set on the reference ("search the parent DFs too";
/// `itacns_pin_cmd`).
pub const PIN_REF_SEARCH_PARENTS: u8 = 0x80;
/// Shortest and longest PIN (`pin_info.attrs.pin.min_length = 5`, `max_length = 8`).
pub const PIN_MIN: usize = 5;
/// See [`PIN_MIN`]; VERIFY always carries this many bytes.
pub const PIN_MAX: usize = 8;
/// Pad byte after the digits (`pad_char = 0xff`, `SC_PIN_CMD_NEED_PADDING`).
pub const PIN_PAD: u8 = 0xFF;

/// MSE RESTORE (`00 22 F3 <se>`) of security environment 3, sent as case 2 with Le `00`:
/// the spec wants a zero Lc byte, which OpenSC "cheats" as Le (§13.14 per its comment).
pub const SE_CNS0: u8 = 0x03;
/// The CNS0 private key reference for MSE SET `83 01 <ref>` (OpenSC's `cns0_secenv`, 0x01;
/// 0x31 on the old Siemens CIE v1, which we do not support).
pub const KEY_REF_CNS0: u8 = 0x01;
/// MSE SET P1-P2 for a signature template (`00 22 F1 B6`).
pub const MSE_SET_SIGN: (u8, u8) = (0xF1, 0xB6);
/// PSO COMPUTE DIGITAL SIGNATURE (`00 2A 9E 9A`); the card applies the raw RSA private
/// operation to exactly modulus-length input (OpenSC declares `SC_ALGORITHM_RSA_RAW`).
pub const PSO_CDS: (u8, u8) = (0x9E, 0x9A);
