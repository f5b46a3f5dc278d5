// Internal: one factory per processor type (pipeline.cc's MakeProcessor picks).
#pragma once

#include <memory>

#include "edgeferry/pipeline/processor.h"

namespace edgeferry::pipeline {

std::unique_ptr<Processor> MakeFilter(FilterConfig c);
std::unique_ptr<Processor> MakeFields(FieldsConfig c);
std::unique_ptr<Processor> MakeDeadband(DeadbandConfig c);
std::unique_ptr<Processor> MakeSample(SampleConfig c);
std::unique_ptr<Processor> MakeAggregate(AggregateConfig c);
std::unique_ptr<Processor> MakeParse(ParseConfig c);

}  // namespace edgeferry::pipeline
