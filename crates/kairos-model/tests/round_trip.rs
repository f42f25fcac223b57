//! Channels survive export and re-import unchanged: the example, and generated channels.

use std::collections::HashMap;

use kairos_model::table::read_csv;
use kairos_model::{Schemas, parse_channel, to_yaml};

fn example() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/bank/channel.yaml"
    ))
    .unwrap()
}

fn example_schemas() -> Schemas {
    let mut schemas = Schemas::new();
    for table in ["customers", "accounts"] {
        let path = format!(
            "{}/../../examples/bank/{table}.csv",
            env!("CARGO_MANIFEST_DIR")
        );
        let file = std::fs::File::open(path).unwrap();
        schemas.insert(read_csv(table, file, &HashMap::new()).unwrap().schema);
    }
    schemas
}

#[test]
fn the_demo_channel_validates_against_its_profile_tables() {
    let channel = parse_channel("channel.yaml", &example(), &example_schemas())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(channel.zones.len() >= 3);
    assert!(
        channel
            .zones
            .iter()
            .map(|z| z.interaction_points.len())
            .sum::<usize>()
            >= 8
    );
    assert!(channel.offers.len() >= 20);
    assert!(channel.categories.len() >= 5);
    assert!(channel.rules.len() >= 30);
    assert!(!channel.event_patterns.is_empty());
}

#[test]
fn the_demo_channel_round_trips() {
    let schemas = example_schemas();
    let original = parse_channel("channel.yaml", &example(), &schemas).unwrap();
    let exported = to_yaml(&original);
    let reread = parse_channel("exported.yaml", &exported, &schemas)
        .unwrap_or_else(|e| panic!("{e}\n{exported}"));
    assert_eq!(original, reread);
    assert_eq!(exported, to_yaml(&reread), "export is stable");
}

mod generated {
    use kairos_model::model::*;
    use kairos_model::{Loc, Located, read_channel, to_yaml};
    use kairos_rules::time::parse_instant;
    use proptest::collection::vec;
    use proptest::prelude::*;
    use proptest::sample::select;

    fn at<T>(value: T) -> Located<T> {
        Located::new(value, Loc::default())
    }

    fn ident(prefix: &'static str) -> impl Strategy<Value = String> {
        "[a-zA-Z][a-zA-Z0-9_]{0,6}".prop_map(move |s| format!("{prefix}{s}"))
    }

    /// Unique names: a generated stem plus the position.
    fn names(prefix: &'static str, max: usize) -> impl Strategy<Value = Vec<Name>> {
        vec(ident(prefix), 0..max).prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, n)| at(format!("{n}_{i}")))
                .collect()
        })
    }

    /// Text that trips naive YAML writers: reserved words, numbers, indicators, quotes, newlines.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[ -~]{0,20}",
            select(vec![
                "true",
                "null",
                "~",
                "yes",
                "123",
                "-4.5",
                "1e3",
                "0x1F",
                "a: b",
                "#x",
                "'q'",
                "\"d\"",
                "- item",
                "* star",
                "multi\nline",
                " padded ",
                "tab\there",
                "back\\slash",
                "ünïcödé €",
                ""
            ])
            .prop_map(str::to_string),
        ]
    }

    fn expression() -> impl Strategy<Value = Expression> {
        prop_oneof![
            select(vec![
                "profile.age > 30",
                "session.page != 'loans'",
                "has(a.b) && x == \"y\"",
                "1 +\n 2"
            ])
            .prop_map(str::to_string),
            "[a-z][ -~]{0,30}",
        ]
        .prop_map(|src| Expression {
            src,
            loc: Loc::default(),
            mapping: ExprMapping::Plain,
        })
    }

    fn scalar() -> impl Strategy<Value = Scalar> {
        prop_oneof![
            any::<bool>().prop_map(Scalar::Bool),
            any::<i64>().prop_map(Scalar::Int),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Scalar::Float),
            text().prop_map(Scalar::String),
        ]
    }

    fn attributes() -> impl Strategy<Value = Vec<Attribute>> {
        (names("a", 4), vec(scalar(), 4)).prop_map(|(names, values)| {
            names
                .into_iter()
                .zip(values)
                .map(|(name, v)| Attribute { name, value: at(v) })
                .collect()
        })
    }

    fn duration() -> impl Strategy<Value = Duration> {
        prop_oneof![1i64..100_000, (1i64..400).prop_map(|d| d * 86_400)]
            .prop_map(|seconds| Duration { seconds })
    }

    fn date() -> impl Strategy<Value = Date> {
        select(vec![
            "2026-01-02",
            "2027-12-31",
            "2026-03-01T10:00:00Z",
            "2026-06-01T08:30:00+02:00",
            "2025-02-28T23:59:59.5Z",
        ])
        .prop_map(|text| {
            let p = parse_instant(text).unwrap();
            Date {
                text: text.to_string(),
                at: p.at,
                date_only: p.date_only,
            }
        })
    }

    fn percent() -> impl Strategy<Value = f64> {
        prop_oneof![0.0..=100.0f64, (0i64..=100).prop_map(|i| i as f64)]
    }

    fn hold() -> impl Strategy<Value = Hold> {
        prop_oneof![Just(Hold::Forever), duration().prop_map(Hold::For)]
    }

    /// An offer; the channel gives it its code.
    fn offer() -> impl Strategy<Value = Offer> {
        let suppression = (
            proptest::option::of(hold()),
            proptest::option::of(hold()),
            proptest::option::of((1i64..10, proptest::option::of(duration()))),
        )
            .prop_map(|(a, r, m)| Suppression {
                after_accept: a.map(at),
                after_reject: r.map(at),
                max_contacts: m.map(|(n, _)| at(n)),
                within: m.and_then(|(_, w)| w.map(at)),
            });
        (
            proptest::option::of(text()),
            proptest::option::of(text()),
            proptest::option::of(ident("c").prop_map(at)),
            attributes(),
            proptest::option::of(date()),
            proptest::option::of(date()),
            proptest::option::of(suppression),
        )
            .prop_map(
                |(name, description, category, attributes, effective, expires, suppression)| {
                    Offer {
                        code: at(String::new()),
                        name,
                        description,
                        category,
                        attributes,
                        effective: effective.map(at),
                        expires: expires.map(at),
                        suppression,
                    }
                },
            )
    }

    fn steps(depth: u32) -> BoxedStrategy<Vec<Step>> {
        let leaf = prop_oneof![
            ident("s").prop_map(|n| StepKind::Populate(at(n))),
            expression().prop_map(StepKind::Select),
        ];
        let kind = if depth == 0 {
            leaf.boxed()
        } else {
            let decision = (
                proptest::option::of(select(vec![DecisionMode::First, DecisionMode::All])),
                vec((expression(), steps(depth - 1)), 1..3),
                proptest::option::of(steps(depth - 1)),
            )
                .prop_map(|(mode, branches, otherwise)| {
                    StepKind::Decision(Decision {
                        mode: mode.map(at),
                        branches: branches
                            .into_iter()
                            .map(|(when, steps)| Branch { when, steps })
                            .collect(),
                        otherwise,
                    })
                });
            let sample = (proptest::option::of(text()), 1usize..4, steps(depth - 1)).prop_map(
                |(seed, n, inner)| {
                    let share = 100.0 / n as f64;
                    let mut splits: Vec<Split> = (0..n)
                        .map(|i| Split {
                            name: at(format!("part{i}")),
                            percent: at(share),
                            steps: if i == 0 { inner.clone() } else { Vec::new() },
                        })
                        .collect();
                    // Make the shares add up to exactly 100 whatever the rounding.
                    let rest: f64 = splits[1..].iter().map(|s| s.percent.value).sum();
                    splits[0].percent = at(100.0 - rest);
                    StepKind::Sample(Sample { seed, splits })
                },
            );
            prop_oneof![leaf, decision, sample].boxed()
        };
        vec(
            kind.prop_map(|kind| Step {
                kind,
                loc: Loc::default(),
            }),
            0..3,
        )
        .boxed()
    }

    fn target() -> impl Strategy<Value = Target> {
        prop_oneof![
            vec(ident("o").prop_map(at), 1..3).prop_map(Target::Offers),
            ident("c").prop_map(|c| Target::Category(at(c))),
        ]
    }

    fn action() -> impl Strategy<Value = Action> {
        let kind = prop_oneof![
            Just(ActionKind::Resegment),
            Just(ActionKind::LogContact),
            Just(ActionKind::LogAccept),
            Just(ActionKind::LogReject),
            (
                select(vec!["session.", "profile."]),
                ident("f"),
                expression()
            )
                .prop_map(|(root, f, expr)| ActionKind::Set {
                    field: at(format!("{root}{f}")),
                    expr
                }),
            ident("e").prop_map(|e| ActionKind::Fire(at(e))),
            (target(), duration()).prop_map(|(target, d)| ActionKind::Suppress {
                target,
                duration: at(d)
            }),
        ];
        (kind, proptest::option::of(expression())).prop_map(|(kind, when)| Action {
            kind,
            when,
            loc: Loc::default(),
        })
    }

    fn rule() -> impl Strategy<Value = Rule> {
        let offers = prop_oneof![
            ident("o").prop_map(|o| (RuleOffers::One(at(o)), None)),
            (
                vec(ident("o").prop_map(at), 1..3),
                proptest::option::of(select(vec![Pick::Best, Pick::Random]))
            )
                .prop_map(|(list, pick)| (RuleOffers::List(list), pick.map(at))),
        ];
        (
            (
                ident("r"),
                prop_oneof![Just("*".to_string()), ident("s")],
                prop_oneof![Just("*".to_string()), ident("z")],
            ),
            offers,
            proptest::option::of(percent()),
            proptest::option::of(expression()),
            proptest::option::of(expression()),
            attributes(),
            proptest::option::of(date()),
            proptest::option::of(date()),
            proptest::option::of(any::<bool>()),
        )
            .prop_map(
                |(
                    (id, segment, zone),
                    (offers, pick),
                    score,
                    eligibility,
                    score_expr,
                    attributes,
                    effective,
                    expires,
                    enabled,
                )| Rule {
                    id: at(id),
                    segment: at(segment),
                    zone: at(zone),
                    offers,
                    pick,
                    score: score.map(at),
                    eligibility,
                    score_expr,
                    attributes,
                    effective: effective.map(at),
                    expires: expires.map(at),
                    enabled: enabled.map(at),
                },
            )
    }

    /// A pattern; the channel gives it its name.
    fn pattern() -> impl Strategy<Value = EventPattern> {
        let shape = prop_oneof![
            vec(ident("e").prop_map(at), 1..3).prop_map(|e| (
                PatternKind::All,
                PatternEvents::List(e),
                None
            )),
            (vec(ident("e").prop_map(at), 1..3), 1i64..10).prop_map(|(e, c)| (
                PatternKind::Counter,
                PatternEvents::List(e),
                Some(c as f64)
            )),
            (
                names("e", 3).prop_filter("some events", |n| !n.is_empty()),
                0.5..10.0f64,
                0.5..20.0f64
            )
                .prop_map(|(e, w, c)| (
                    PatternKind::Weighted,
                    PatternEvents::Weighted(e.into_iter().map(|n| (n, at(w))).collect()),
                    Some(c)
                )),
        ];
        (
            shape,
            proptest::option::of((duration(), proptest::option::of(any::<bool>()))),
            vec(action(), 0..3),
        )
            .prop_map(|((kind, events, count), window, actions)| EventPattern {
                name: at(String::new()),
                kind: at(kind),
                events,
                count: count.map(at),
                window: window.map(|(w, _)| at(w)),
                rolling: window.and_then(|(_, r)| r),
                actions,
            })
    }

    prop_compose! {
        fn channel()(
            name in ident("ch"),
            description in proptest::option::of(text()),
            default_level in proptest::option::of(ident("l")),
            levels in vec((vec(ident("id").prop_map(at), 1..3), proptest::option::of(ident("t")), names("d", 2)), 0..3),
            caps in (proptest::option::of(1i64..100), proptest::option::of(percent())),
            zones in vec((names("ip", 3), vec(proptest::option::of(text()), 3)), 0..3),
            categories in names("c", 4),
            offers in vec(offer(), 0..4),
            segments in vec(expression(), 0..3),
            flowcharts in vec((proptest::option::of(ident("l")), steps(2)), 0..2),
            rules in vec(rule(), 0..4),
            events in vec(vec(action(), 0..4), 0..3),
            patterns in vec(pattern(), 0..3),
            constraints in vec((target(), 1i64..1000, proptest::option::of(duration())), 0..3),
            learning in proptest::option::of((select(vec![LearningMode::Off, LearningMode::Thompson]), proptest::option::of(percent()), proptest::option::of(0i64..100))),
        ) -> Channel {
            Channel {
                name: at(name),
                description,
                default_audience_level: default_level.map(at),
                audience_levels: levels.into_iter().enumerate().map(|(i, (id_fields, table, dims))| AudienceLevel {
                    name: at(format!("level{i}")),
                    id_fields,
                    profile_table: table.map(at),
                    dimensions: dims.into_iter().map(|d| Dimension { name: d, table: at("t".into()), key: at("k".into()) }).collect(),
                }).collect(),
                max_offer_contacts_per_visit: caps.0.map(at),
                control_group_percent: caps.1.map(at),
                zones: zones.into_iter().enumerate().map(|(i, (ips, defaults))| Zone {
                    name: at(format!("zone{i}")),
                    interaction_points: ips.into_iter().zip(defaults).map(|(name, default)| InteractionPoint { name: at(format!("{}_{i}", name.value)), default }).collect(),
                }).collect(),
                categories,
                offers: offers.into_iter().enumerate().map(|(i, offer)| Offer { code: at(format!("OFFER{i}")), ..offer }).collect(),
                segments: segments.into_iter().enumerate().map(|(i, expr)| Segment { name: at(format!("seg{i}")), expr }).collect(),
                flowcharts: flowcharts.into_iter().enumerate().map(|(i, (level, steps))| Flowchart { name: at(format!("chart{i}")), audience_level: level.map(at), steps }).collect(),
                rules,
                events: events.into_iter().enumerate().map(|(i, actions)| Event { name: at(format!("event{i}")), actions }).collect(),
                event_patterns: patterns.into_iter().enumerate().map(|(i, p)| EventPattern { name: at(format!("pattern{i}")), ..p }).collect(),
                constraints: constraints.into_iter().map(|(target, max, per)| Constraint { target, max_contacts: at(max), per: per.map(at), loc: Loc::default() }).collect(),
                learning: learning.map(|(mode, explore, min)| Learning { mode: at(mode), explore_percent: explore.map(at), min_contacts: min.map(at) }),
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        #[test]
        fn any_channel_survives_export_and_reimport(channel in channel()) {
            let exported = to_yaml(&channel);
            let reread = read_channel("generated.yaml", &exported);
            prop_assert!(reread.is_ok(), "{}\n{exported}", reread.unwrap_err());
            prop_assert_eq!(&channel, &reread.unwrap(), "{}", exported);
        }
    }
}
