//! Scrapes of a service's Prometheus endpoint, summed by metric name and a label filter.

/// The samples of one scrape, as `(series, value)`.
pub struct Samples(Vec<(String, f64)>);

impl Samples {
    /// The sum over the series of `name` whose labels contain `label` (all when empty).
    pub fn sum(&self, name: &str, label: &str) -> f64 {
        self.0
            .iter()
            .filter(|(series, _)| {
                let metric = series
                    .split_once('{')
                    .map_or(series.as_str(), |(metric, _)| metric);
                metric == name && series.contains(label)
            })
            .map(|(_, value)| value)
            .sum()
    }
}

/// `GET /metrics` of the process listening on `port`.
pub async fn scrape(http: &reqwest::Client, port: u16) -> anyhow::Result<Samples> {
    let text = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(Samples(
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                Some((series.to_owned(), value.parse().ok()?))
            })
            .collect(),
    ))
}
