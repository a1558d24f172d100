//! The resumable document read (`flows::document`) against card-sim's virtual CIE: a whole
//! read with progress, then a lost tag or timeout injected at every APDU index of a full
//! read — each gives a typed error, and the next tap finishes without re-reading any file
//! the first one completed.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use card_sim::emrtd::{self as chip, EmrtdBuilder, FaceImage};
use card_sim::faulty::{Fault, FaultyTransport};
use card_sim::{CardConfig, CieVariant, VirtualCard};
use cie_core::apdu::{ApduError, CardChannel};
use cie_core::applets::emrtd::lds::File;
use cie_core::applets::emrtd::passive::TrustStore;
use cie_core::applets::emrtd::{Can, EmrtdError, PacePassword};
use cie_core::flows::document::{Access, CloneCheck, DocumentProgress, DocumentRead};
use cie_core::transport::TransportError;
use common::Counter;

#[derive(Default)]
struct Seen(Mutex<Vec<(File, usize, Option<usize>)>>);

impl DocumentProgress for Seen {
    fn on_file(&self, file: File, done: usize, total: Option<usize>) {
        self.0.lock().unwrap().push((file, done, total));
    }
}

impl Seen {
    fn started(&self) -> BTreeSet<File> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, d, _)| *d == 0)
            .map(|(f, _, _)| *f)
            .collect()
    }
}

fn can() -> PacePassword {
    PacePassword::Can(Can::new(chip::TEST_CAN).unwrap())
}

fn card(builder: &EmrtdBuilder) -> Arc<VirtualCard> {
    Arc::new(card_sim::cie::virtual_cie_with(
        CieVariant::default(),
        CardConfig::extended(1024),
        builder,
    ))
}

#[test]
fn whole_read_with_progress_and_passive_authentication() {
    let builder = EmrtdBuilder::cie().face(FaceImage::LargeJpeg);
    let card = card(&builder);
    let seen = Seen::default();
    let mut read = DocumentRead::new(can());
    let doc =
        pollster::block_on(read.tap(&CardChannel::new(card), &Counter::new(1), &seen)).unwrap();
    assert_eq!(doc.access, Access::Pace);
    let expected = builder.files();
    assert_eq!(doc.file(File::Sod), Some(expected.sod.as_slice()));
    for (n, bytes) in &expected.dgs {
        assert_eq!(doc.file(File::Dg(*n)), Some(bytes.as_slice()), "DG{n}");
    }
    // DG2 progress: several steps, increasing, ending at the total.
    let dg2: Vec<_> = seen
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|(f, _, _)| *f == File::Dg(2))
        .cloned()
        .collect();
    let total = expected.dg(2).unwrap().len();
    assert!(total > 10_000, "a large photo ({total} bytes)");
    assert!(dg2.len() > 3, "{dg2:?}");
    assert!(dg2.windows(2).all(|w| w[0].1 <= w[1].1));
    assert_eq!(dg2.last().unwrap().1, total);
    assert_eq!(dg2.last().unwrap().2, Some(total));
    let mut trust = TrustStore::new();
    trust.add_der(chip::CSCA_CERT_DER).unwrap();
    assert!(doc.passive(&trust).unwrap().is_valid());
    // The CIE's DG14 DH key (chip authentication) and DG15 RSA key (active authentication).
    assert_eq!(doc.chip_authentication, CloneCheck::Verified);
    assert_eq!(doc.active_authentication, CloneCheck::Verified);
    assert_eq!(
        doc.personal_details()
            .unwrap()
            .unwrap()
            .personal_number
            .as_deref(),
        Some("TSTTST80A01H501X")
    );
}

#[test]
fn a_can_on_a_bac_only_passport_asks_for_the_mrz() {
    let card = Arc::new(chip::virtual_passport_bac(CardConfig::default()));
    let mut read = DocumentRead::new(can());
    let e =
        pollster::block_on(read.tap(&CardChannel::new(card), &Counter::new(1), &Seen::default()))
            .unwrap_err();
    assert!(matches!(e, EmrtdError::InvalidInput { .. }), "{e:?}");
}

#[test]
fn lost_tag_at_every_apdu_then_resume_without_rereading() {
    let builder = EmrtdBuilder::cie();
    let expected = builder.files();
    // A clean run's APDU count.
    let clean = {
        let card = card(&builder);
        let t = Arc::new(FaultyTransport::new(card));
        pollster::block_on(DocumentRead::new(can()).tap(
            &CardChannel::new(t.clone()),
            &Counter::new(1),
            &Seen::default(),
        ))
        .unwrap();
        t.apdu_count()
    };
    assert!(clean > 20, "{clean}");
    for n in 0..clean {
        let fault = if n % 2 == 0 {
            Fault::TagLost
        } else {
            Fault::Timeout
        };
        let card = card(&builder);
        let mut read = DocumentRead::new(can());
        let faulty = Arc::new(FaultyTransport::new(card.clone()).fail_at(n, fault.clone()));
        let Err(e) = pollster::block_on(read.tap(
            &CardChannel::new(faulty.clone()),
            &Counter::new(2),
            &Seen::default(),
        )) else {
            panic!(
                "APDU {n} of {clean}: {fault:?} did not stop the read ({} APDUs)",
                faulty.apdu_count()
            );
        };
        assert!(
            matches!(
                e,
                EmrtdError::Apdu(ApduError::Transport(
                    TransportError::TagLost | TransportError::Timeout
                ))
            ),
            "APDU {n}: {e:?}"
        );
        assert!(!e.message_it().is_empty());
        let kept: BTreeSet<File> = read.completed().into_iter().collect();
        // The user taps again.
        card.power_cycle();
        let seen = Seen::default();
        let doc =
            pollster::block_on(read.tap(&CardChannel::new(card.clone()), &Counter::new(3), &seen))
                .unwrap_or_else(|e| panic!("APDU {n}: second tap failed: {e:?}"));
        let reread: Vec<_> = seen.started().intersection(&kept).copied().collect();
        assert!(
            reread.is_empty(),
            "APDU {n}: re-read {reread:?} already completed"
        );
        for (d, bytes) in &expected.dgs {
            assert_eq!(
                doc.file(File::Dg(*d)),
                Some(bytes.as_slice()),
                "APDU {n}: DG{d}"
            );
        }
        assert_eq!(
            doc.file(File::Sod),
            Some(expected.sod.as_slice()),
            "APDU {n}"
        );
    }
}
