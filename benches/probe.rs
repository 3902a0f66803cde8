use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use switchboard::dialect::{DecodeContext, Direction, Registry, parse_frame, write_frame};
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
fn probe(c: &mut Criterion) {
    let reg = Registry::embedded().unwrap();
    let sa = reg.dialect(&std::env::var("FROM").unwrap()).unwrap();
    let cs = reg.dialect(&std::env::var("TO").unwrap()).unwrap();
    let f = std::env::var("FRAME").unwrap();
    let frame = f.as_bytes();
    let ctx = DecodeContext::default();
    c.bench_function("parse_frame", |b| {
        b.iter(|| black_box(parse_frame(sa.framing, black_box(frame)).unwrap()))
    });
    c.bench_function("parse+decode", |b| {
        b.iter(|| {
            let w = parse_frame(sa.framing, frame).unwrap();
            black_box(sa.decode(w, Some(Direction::Down), &ctx).unwrap())
        })
    });
    c.bench_function("decode_frame", |b| {
        b.iter(|| {
            black_box(
                sa.decode_frame(black_box(frame), Some(Direction::Down), &ctx)
                    .unwrap(),
            )
        })
    });
    c.bench_function("raw_frame", |b| {
        b.iter(|| {
            black_box(
                switchboard::dialect::parse_raw_frame(sa.framing, black_box(frame))
                    .unwrap()
                    .name
                    .len(),
            )
        })
    });
    let w = parse_frame(sa.framing, frame).unwrap();
    let evs = sa.decode(w, Some(Direction::Down), &ctx).unwrap();
    let ev = &evs[0];
    c.bench_function("encode", |b| {
        b.iter(|| black_box(cs.encode(black_box(ev), Direction::Down).unwrap()))
    });
    let mut out = Vec::new();
    c.bench_function("encode+write", |b| {
        b.iter(|| {
            out.clear();
            let e = cs.encode(ev, Direction::Down).unwrap();
            write_frame(cs.framing, &e.name, e.payload.as_ref(), &ev.meta, &mut out);
        })
    });
    c.bench_function("meta_fresh", |b| {
        b.iter(|| black_box(switchboard::event::Meta::fresh()))
    });
    c.bench_function("clone_event", |b| b.iter(|| black_box(ev.clone())));
}
criterion_group!(benches, probe);
criterion_main!(benches);
