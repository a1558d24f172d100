//! The peer: a terminal that sends what cie.md §3.2 ("Full ordered sequence: L3 login as
//! sent by the official SDK", from the IPZS Android SDK `Ias.kt` + `CieIDSdk.kt`) lists, in
//! its order and with its chunk sizes (§3.1). The cryptography is the core's own public
//! building blocks (`apdu`, `sm::SecureChannel`, `applets::ias::{dh, dapp, pubkey}`), so
//! what differs from "ours" is only the order, the repeated SELECTs and the chunk sizes.
//!
//! Deliberately generous to the peer, where cie.md leaves a byte open:
//! - GET DATA (§3.2 steps 5, 7, 8) is listed without a trailing Le; sent that way a card
//!   could answer `61xx` and cost a GET RESPONSE each. The peer sends the core's form
//!   (`dh::read_group` / `dh::read_ca_key`, Le `00`), the same bytes as ours.
//! - INTERNAL AUTHENTICATE (steps 9.9, 12) carries Le `00` as in ours.
//! - The DH exponent is drawn the core's way (`DhGroup::exponent_from`); A1/A5 reject-sample
//!   differently, which changes no APDU size.

use crate::common::{BenchResult, PIN, Recorder, SEED, SeededRandomness, TapOutput, fail};
use cie_core::apdu::{ApduChannel, CardChannel, Command, Sw, SwKind, files};
use cie_core::applets::ias::constants::{AID_CIE, AID_IAS};
use cie_core::applets::ias::dapp::{self, Transcript, terminal_chr};
use cie_core::applets::ias::dh;
use cie_core::applets::ias::digest_info::{DigestAlgorithm, digest_info};
use cie_core::applets::ias::pubkey::RsaPublicKey;
use cie_core::applets::ias::secure::Randomness;
use cie_core::sm::{SecureChannel, Ssc, kdf};
use cie_core::tlv::{self, Tag};

/// §3.1 "Chunk sizes actually used": IPZS Android reads with Le `00` (256) in clear.
const CLEAR_CHUNK: usize = 256;
/// §3.1: IPZS desktop and old iOS use `0x80` in clear and under SM; pagopa iOS `0x80` under
/// SM. The IAS-ECC SM limit (`0xE7`, what ours uses) is not used by any official client.
const SM_CHUNK: usize = 0x80;
/// Guard for the read loop (no CIE file comes close).
const MAX_FILE: usize = 64 * 1024;

/// SELECT by file identifier under the current DF with P2 `04` (FCP) and no Le, as the
/// §3.2 lines write it: `00 A4 02 04 02 <fid>` (steps 3, 6 and 11).
fn select_ef_fcp(fid: [u8; 2]) -> Command {
    Command::new(0x00, 0xA4, 0x02, 0x04).with_data(fid)
}

/// The §3.1 READ BINARY loop on the current EF, fixed chunk `le`: on `9000` append and
/// advance, on `6282` append and stop, on `6B00` stop. The file's size (in the FCP) is not
/// used, as in the SDK, so a file that is a multiple of `le` costs one more read.
pub(crate) async fn read_loop<C: ApduChannel + ?Sized>(ch: &C, le: usize) -> BenchResult<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let resp = files::read_binary(ch, out.len(), le).await?;
        match resp.sw {
            Sw::OK if !resp.data.is_empty() => out.extend_from_slice(&resp.data),
            Sw::OK | Sw::WRONG_P1P2 => return Ok(out),
            Sw::END_OF_FILE => {
                out.extend_from_slice(&resp.data);
                return Ok(out);
            }
            sw => return fail(format!("READ BINARY answered {sw:?}")),
        }
        if out.len() > MAX_FILE {
            return fail("file larger than any CIE file");
        }
    }
}

/// The DER object at the start of `bytes` (files may be padded past it, §2.1; A3
/// `GetASN1DataLenght`, A5 `removeTrailingZeros` trim after reading the whole file).
fn trim_der(mut bytes: Vec<u8>) -> BenchResult<Vec<u8>> {
    let len = tlv::encoded_len(&bytes)?;
    if len > bytes.len() {
        return fail("file shorter than its DER length");
    }
    bytes.truncate(len);
    Ok(bytes)
}

/// Send `cmd` and require `9000`.
async fn ok<C: ApduChannel + ?Sized>(ch: &C, cmd: Command) -> BenchResult<Vec<u8>> {
    let ins = cmd.ins;
    Ok(ch.transmit(&cmd).await?.into_data(ins)?)
}

/// One official login tap: phase A, phase B, PIN, certificate, one signature.
pub async fn tap(ch: &CardChannel, rec: &mut Recorder<'_>) -> BenchResult<TapOutput> {
    let rng = SeededRandomness::new(SEED);

    // ---- Phase A: NIS read in clear (§3.2 phase A, A1 `getIdServizi`) ----
    // Step 1: `00 A4 04 0C 0D <IAS AID>`; "the SW is not checked".
    ch.transmit(&Command::select_aid(AID_IAS)).await?;
    // Step 2: `00 A4 04 04 06 A0 00 00 00 00 39` ← 9000 + FCP (P2 04, no Le).
    ok(ch, Command::new(0x00, 0xA4, 0x04, 0x04).with_data(AID_CIE)).await?;
    // Step 3: `00 A4 02 04 02 10 01` (SELECT EF 1001, by FID rather than SFI).
    ok(ch, select_ef_fcp([0x10, 0x01])).await?;
    // Step 4: `00 B0 00 00 0C`; anything but 9000 means "not a CIE".
    let nis = ok(ch, Command::new(0x00, 0xB0, 0x00, 0x00).with_le(0x0C)).await?;
    rec.mark("select + NIS");

    let sm = secure_channel(ch, &rng, None).await?;
    rec.mark("secure channel (DH + DAPP)");

    verify_pin(&sm).await?;
    rec.mark("PIN");

    // Step 11: SELECT `00 A4 02 04 02 10 03` (SM), then the READ BINARY loop in 0x80 chunks
    // (§3.1) to the end of the padded file (it ends on a protected 6B00 when the file is a
    // multiple of the chunk, §9), trimmed to the DER afterwards.
    ok(&sm, select_ef_fcp([0x10, 0x03])).await?;
    let certificate = trim_der(read_loop(&sm, SM_CHUNK).await?)?;
    rec.mark("certificate");

    let signature = sign(
        &sm,
        &digest_info(DigestAlgorithm::Sha256, &crate::common::digest())?,
    )
    .await?;
    rec.mark("signature");
    Ok(TapOutput {
        nis,
        certificate,
        signature,
    })
}

/// EF 1004, the chip's DAPP public key, read in clear the SDK's way (§3.2 step 6).
pub(crate) async fn read_chip_key(ch: &CardChannel) -> BenchResult<RsaPublicKey> {
    ok(ch, select_ef_fcp([0x10, 0x04])).await?;
    Ok(RsaPublicKey::from_pkcs1_der(&trim_der(
        read_loop(ch, CLEAR_CHUNK).await?,
    )?)?)
}

/// §3.2 phase B, the secure channel: "SELECT IAS (step 1, P2=0C), then SELECT CIE
/// (`00 A4 04 0C 06 …39`)", DH, DAPP (steps 5–9.10). `chip_key`: EF 1004's key when the
/// caller has it cached (the desktop module keeps it from pairing), else it is read.
pub(crate) async fn secure_channel<'c>(
    ch: &'c CardChannel,
    rng: &SeededRandomness,
    chip_key: Option<&RsaPublicKey>,
) -> BenchResult<SecureChannel<&'c CardChannel>> {
    // "SELECT IAS (step 1, P2=0C), then SELECT CIE (`00 A4 04 0C 06 …39`)": both again.
    ch.transmit(&Command::select_aid(AID_IAS)).await?;
    ok(ch, Command::select_aid(AID_CIE)).await?;
    // Step 5: DH g, p, q by three GET DATA (tags 97, 98, 99), "the same shape for g, p and q".
    let group = dh::read_group(ch).await?;
    // Step 6: `00 A4 02 04 02 10 04`, then "READ BINARY until the end" in the SDK's clear
    // chunk (§3.1 IPZS Android: `00`, 256) — unless the caller holds the key already (the
    // desktop module's pairing cache).
    let chip_key = match chip_key {
        Some(key) => key.clone(),
        None => read_chip_key(ch).await?,
    };
    // Step 7: GET DATA `…BF A0 04 03 7F 49 80`, the CA key for the terminal certificate.
    let ca = dh::read_ca_key(ch).await?;
    // Step 8: x, PuK.IFD = g^x mod p; MSE SET KAT `00 22 41 A6` with
    // `80 01 9B 83 01 81 91 82 01 00 <PuK.IFD>` (266 bytes): the channel sends it as the
    // "2-APDU chain, `10 22 41 A6 FF…` then `00 22 41 A6 0B…`" of step 8.
    let x = loop {
        let mut candidate = vec![0u8; group.q.len()];
        rng.fill(&mut candidate)?;
        if let Some(x) = group.exponent_from(&candidate) {
            break x;
        }
    };
    let ifd_public = group.public_value(&x)?;
    let mut kat = vec![0x80, 0x01, 0x9B, 0x83, 0x01, 0x81];
    kat.extend(tlv::encode_to_vec(Tag::new(0x91), &ifd_public));
    ok(ch, Command::new(0x00, 0x22, 0x41, 0xA6).with_data(kat)).await?;
    // Step 8: GET DATA `00 CB 3F FF 06 4D 04 A6 02 91 00` → PuK.ICC.DH under tag 91.
    let answer = ok(
        ch,
        Command::new(0x00, 0xCB, 0x3F, 0xFF)
            .with_data([0x4D, 0x04, 0xA6, 0x02, 0x91, 0x00])
            .with_le(256),
    )
    .await?;
    let Some(icc) = tlv::find_deep(&answer, Tag::new(0x91))? else {
        return fail("no PuK.ICC.DH in the GET DATA answer");
    };
    let icc_public = icc.value.to_vec();
    let secret = group.shared_secret(&icc_public, &x)?;
    // Step 8: K_enc / K_mac from SHA-256(secret ‖ counter), SSC = 00…01.
    let ssc = Ssc::from_bytes(&[0, 0, 0, 0, 0, 0, 0, 1])?;
    let sm = SecureChannel::new(ch, Box::new(kdf::ias_session(&secret)), ssc)?;

    // Step 9 (DAPP, all under SM), same commands as ours.
    // 9.3 MSE SET DST `00 22 81 B6 06 80 01 41 83 01 84`.
    ok(
        &sm,
        Command::new(0x00, 0x22, 0x81, 0xB6).with_data([0x80, 0x01, 0x41, 0x83, 0x01, 0x84]),
    )
    .await?;
    // 9.4 PSO VERIFY CERTIFICATE `00 2A 00 AE <7F21…>`, an SM chain of two (231 + rest).
    ok(
        &sm,
        Command::new(0x00, 0x2A, 0x00, 0xAE).with_data(dapp::terminal_certificate(&ca)?),
    )
    .await?;
    // 9.5 MSE SET AT `00 22 81 A4 0E 83 0C <CHR>`.
    let mut chr = vec![0x83, 0x0C];
    chr.extend_from_slice(&terminal_chr());
    ok(&sm, Command::new(0x00, 0x22, 0x81, 0xA4).with_data(chr)).await?;
    // 9.6 GET CHALLENGE `00 84 00 00 08`.
    let rnd_icc = ok(&sm, Command::new(0x00, 0x84, 0x00, 0x00).with_le(8)).await?;
    let Ok(rnd_icc) = <[u8; 8]>::try_from(rnd_icc.as_slice()) else {
        return fail("card challenge not 8 bytes");
    };
    // 9.7 EXTERNAL AUTHENTICATE `00 82 00 00 <SN.IFD ‖ SIG>`, an SM chain (231 + 33).
    let transcript = Transcript {
        group: &group,
        ifd_public: &ifd_public,
        icc_public: &icc_public,
    };
    let mut prnd = vec![0u8; dapp::prnd_len()];
    rng.fill(&mut prnd)?;
    let ext_auth = transcript.external_authenticate(&rnd_icc, &prnd)?;
    ok(
        &sm,
        Command::new(0x00, 0x82, 0x00, 0x00).with_data(ext_auth),
    )
    .await?;
    // 9.8 MSE SET AT `00 22 41 A4 06 84 01 82 80 01 9B`.
    ok(
        &sm,
        Command::new(0x00, 0x22, 0x41, 0xA4).with_data([0x84, 0x01, 0x82, 0x80, 0x01, 0x9B]),
    )
    .await?;
    // 9.9 INTERNAL AUTHENTICATE `00 88 00 00 08 <RND.IFD>` ← SN.ICC ‖ SIG.ICC (61xx → GET
    // RESPONSE, done by the channel), checked with the EF 1004 key.
    let mut rnd_ifd = [0u8; 8];
    rng.fill(&mut rnd_ifd)?;
    let answer = ok(
        &sm,
        Command::new(0x00, 0x88, 0x00, 0x00)
            .with_data(rnd_ifd)
            .with_le(256),
    )
    .await?;
    transcript.check_chip(&chip_key, &rnd_ifd, &answer)?;
    // 9.10 SSC = RND.ICC[4..8] ‖ RND.IFD[4..8], same keys.
    sm.set_ssc(Ssc::from_challenges(&rnd_icc, &rnd_ifd))?;
    Ok(sm)
}

/// Step 10: VERIFY PIN `00 20 00 81 08 <8 ASCII digits>` (SM), sent straight away: the
/// SDK does not read the tries left first (§3.4: no reference sends VERIFY without data).
/// The core's `Pin` keeps its bytes crate-private, so the peer holds the digits itself.
pub(crate) async fn verify_pin<C: ApduChannel>(sm: &SecureChannel<C>) -> BenchResult<()> {
    let resp = sm
        .transmit(&Command::new(0x00, 0x20, 0x00, 0x81).with_data(PIN.to_vec()))
        .await?;
    if resp.sw.kind() != SwKind::Ok {
        return fail(format!("VERIFY PIN answered {:?}", resp.sw));
    }
    Ok(())
}

/// Step 12: MSE SET `00 22 41 A4 06 80 01 02 84 01 81`, then INTERNAL AUTHENTICATE
/// `00 88 00 00 <DigestInfo>` ← 256-byte signature.
pub(crate) async fn sign<C: ApduChannel>(
    sm: &SecureChannel<C>,
    digest_info: &[u8],
) -> BenchResult<Vec<u8>> {
    ok(
        sm,
        Command::new(0x00, 0x22, 0x41, 0xA4).with_data([0x80, 0x01, 0x02, 0x84, 0x01, 0x81]),
    )
    .await?;
    ok(
        sm,
        Command::new(0x00, 0x88, 0x00, 0x00)
            .with_data(digest_info.to_vec())
            .with_le(256),
    )
    .await
}
