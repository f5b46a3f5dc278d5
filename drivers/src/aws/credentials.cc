#include "edgeferry/drivers/aws/credentials.h"

#include <fmt/format.h>

#include <boost/property_tree/ini_parser.hpp>
#include <boost/property_tree/ptree.hpp>
#include <cstdlib>
#include <filesystem>

namespace edgeferry::drivers::aws {

namespace {
std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}
}  // namespace

Result<Credentials> LoadCredentials(const std::string& file, const std::string& profile) {
  if (file.empty() && !Env("AWS_ACCESS_KEY_ID").empty() && !Env("AWS_SECRET_ACCESS_KEY").empty()) {
    return Credentials{Env("AWS_ACCESS_KEY_ID"), Env("AWS_SECRET_ACCESS_KEY"), Env("AWS_SESSION_TOKEN")};
  }
  std::string path = file;
  if (path.empty()) path = Env("AWS_SHARED_CREDENTIALS_FILE");
  if (path.empty() && !Env("HOME").empty()) path = Env("HOME") + "/.aws/credentials";
  const std::string section = !profile.empty() ? profile : !Env("AWS_PROFILE").empty() ? Env("AWS_PROFILE") : "default";
  if (path.empty() || !std::filesystem::exists(path)) {
    // Where it looked, so that an operator can tell which of them to fix.
    const std::string env = file.empty() ? "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY not both set, and " : "";
    std::string where = "no file at " + path;
    if (path.empty()) {
      where = "no credentials file (neither AWS_SHARED_CREDENTIALS_FILE nor HOME set)";
    } else if (!file.empty()) {
      where = "no file at credentials_file " + path;
    } else if (!Env("AWS_SHARED_CREDENTIALS_FILE").empty()) {
      where = "no file at AWS_SHARED_CREDENTIALS_FILE " + path;
    }
    return Status::NotFound(fmt::format("no AWS credentials (looked in: {}{})", env, where));
  }
  boost::property_tree::ptree tree;
  try {
    boost::property_tree::ini_parser::read_ini(path, tree);
  } catch (const boost::property_tree::ini_parser_error& e) {
    return Status::InvalidArgument(fmt::format("{}: {}", path, e.what()));
  }
  Credentials c;
  c.access_key_id = tree.get<std::string>(section + ".aws_access_key_id", "");
  c.secret_access_key = tree.get<std::string>(section + ".aws_secret_access_key", "");
  c.session_token = tree.get<std::string>(section + ".aws_session_token", "");
  if (c.access_key_id.empty() || c.secret_access_key.empty()) {
    return Status::InvalidArgument(fmt::format("{}: profile [{}] has no aws_access_key_id/aws_secret_access_key",
                                               path, section));
  }
  return c;
}

}  // namespace edgeferry::drivers::aws
