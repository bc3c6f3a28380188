mod crawl;
