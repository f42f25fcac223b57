//! Putting a visitor into segments: segment expressions first, then the interactive
//! flowcharts of the visitor's audience level.

use kairos_rules::time::Timestamp;

use crate::deployment::{Deployment, Step};
use crate::random::percentile;
use crate::segments::SegmentSet;
use crate::session::{Session, SessionActivation};

impl Session {
    /// Recomputes the visitor's segments from scratch.
    pub(crate) fn resegment(&mut self, dep: &Deployment, now: Timestamp) {
        let (segments, errors) = self.segment(dep, now, None);
        self.eval_errors += errors;
        self.bound.as_mut().expect("bound").segments = segments;
    }

    /// The visitor's segments and the flowchart paths (indices into the deployment's
    /// branches) that populated them.
    pub(crate) fn trace_segments(
        &mut self,
        dep: &Deployment,
        now: Timestamp,
    ) -> (SegmentSet, Vec<usize>) {
        self.bind(dep, now);
        let mut hits = Vec::new();
        let (segments, _) = self.segment(dep, now, Some(&mut hits));
        (segments, hits)
    }

    /// The visitor's segments and the evaluation errors met, recording populate paths in `hits`.
    fn segment(
        &self,
        dep: &Deployment,
        now: Timestamp,
        mut hits: Option<&mut Vec<usize>>,
    ) -> (SegmentSet, u64) {
        let bound = self.bound.as_ref().expect("bound before segmenting");
        let mut segments = SegmentSet::with_capacity(dep.segments.len());
        let mut errors = 0;
        for (segment, program) in &dep.segment_exprs {
            // Later expressions may ask about earlier segments: they see the set so far.
            let act = SessionActivation {
                segments: &segments,
                ..SessionActivation::new(dep, bound, now)
            };
            match program.eval_bool(&act) {
                Ok(true) => segments.insert(*segment),
                Ok(false) => {}
                Err(_) => errors += 1,
            }
        }
        for chart in &dep.flowcharts {
            if chart.level.is_none() || chart.level == bound.level {
                let mut run = Run {
                    dep,
                    now,
                    audience_key: &self.audience_key,
                    bound,
                    errors: 0,
                    hits: hits.as_deref_mut(),
                };
                run.steps(&chart.steps, &mut segments);
                errors += run.errors;
            }
        }
        (segments, errors)
    }
}

struct Run<'a> {
    dep: &'a Deployment,
    now: Timestamp,
    audience_key: &'a str,
    bound: &'a crate::session::Bound,
    errors: u64,
    hits: Option<&'a mut Vec<usize>>,
}

impl Run<'_> {
    fn test(&mut self, program: &kairos_rules::Program, segments: &SegmentSet) -> bool {
        let act = SessionActivation {
            segments,
            ..SessionActivation::new(self.dep, self.bound, self.now)
        };
        match program.eval_bool(&act) {
            Ok(b) => b,
            Err(_) => {
                self.errors += 1;
                false
            }
        }
    }

    /// Runs a list of steps; a `select` that does not hold stops the rest of the list.
    fn steps(&mut self, steps: &[Step], segments: &mut SegmentSet) {
        for step in steps {
            match step {
                Step::Populate { segment, branch } => {
                    segments.insert(*segment);
                    if let Some(hits) = self.hits.as_mut() {
                        hits.push(*branch);
                    }
                }
                Step::Select(program) => {
                    if !self.test(program, segments) {
                        return;
                    }
                }
                Step::Decision {
                    all,
                    branches,
                    otherwise,
                } => {
                    let mut matched = false;
                    for (program, inner) in branches {
                        if self.test(program, segments) {
                            matched = true;
                            self.steps(inner, segments);
                            if !all {
                                break;
                            }
                        }
                    }
                    if !matched {
                        self.steps(otherwise, segments);
                    }
                }
                Step::Sample { seed, splits } => {
                    let position = percentile(&[seed, self.audience_key]);
                    if let Some((_, inner)) = splits.iter().find(|(upper, _)| position < *upper) {
                        self.steps(inner, segments);
                    }
                }
            }
        }
    }
}
